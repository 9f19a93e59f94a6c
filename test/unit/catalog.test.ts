import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { catalogToBatch } from '../../src/catalog/catalog-batch.js';
import { CatalogError, readCatalog } from '../../src/catalog/read-catalog.js';
import { PromptTemplate } from '../../src/catalog/template.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'rendermill-catalog-'));
const file = (name: string, text: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('catalogs', () => {
  it('reads the shipped example catalog: 50 rows with sku, title and colour', async () => {
    const catalog = await readCatalog('examples/catalog.csv');
    expect(catalog.rows).toHaveLength(50);
    expect(catalog.columns).toEqual(
      expect.arrayContaining(['sku', 'title', 'colour', 'material', 'category']),
    );
    const ids = new Set(catalog.rows.map((r) => r.values.sku));
    expect(ids.size).toBe(50);
  });

  it('reads CSV with quoted commas, JSONL and JSON arrays alike', async () => {
    const csv = await readCatalog(file('a.csv', 'sku,title\nA1,"Mug, large"\n\nA2,Plate\n'));
    const jsonl = await readCatalog(
      file('a.jsonl', '{"sku":"A1","title":"Mug, large"}\n\n{"sku":"A2","title":"Plate"}\n'),
    );
    const json = await readCatalog(
      file('a.json', '[{"sku":"A1","title":"Mug, large"},{"sku":"A2","title":"Plate"}]'),
    );
    for (const catalog of [csv, jsonl, json]) {
      expect(catalog.rows.map((r) => r.values)).toEqual([
        { sku: 'A1', title: 'Mug, large' },
        { sku: 'A2', title: 'Plate' },
      ]);
    }
    expect(jsonl.rows[1]?.line).toBe(3);
  });

  it('names the line of malformed input', async () => {
    await expect(readCatalog(file('b.jsonl', '{"sku":"A1"}\n{oops\n'))).rejects.toThrow(
      /b\.jsonl:2: not valid JSON/,
    );
    await expect(readCatalog(file('b.csv', 'sku,title\nA1,"unterminated\n'))).rejects.toThrow(
      CatalogError,
    );
  });

  it('fills a template per row and refuses columns the catalog lacks', async () => {
    const catalog = await readCatalog(
      file('c.csv', 'sku,title,colour\nS1,Mug,red\nS2,Plate, blue \n'),
    );
    const batch = catalogToBatch(catalog, {
      template: new PromptTemplate('A {{colour}} {{ title }} on white'),
      defaults: { size: '256x256' },
    });
    expect(batch.items).toEqual([
      { id: 'S1', prompt: 'A red Mug on white' },
      { id: 'S2', prompt: 'A blue Plate on white' },
    ]);
    expect(batch.size).toBe('256x256');
    expect(() =>
      catalogToBatch(catalog, {
        template: new PromptTemplate('{{brand}} {{title}}'),
        defaults: {},
      }),
    ).toThrow(
      'the template uses {{brand}} but the catalog has no such column; columns: sku, title, colour',
    );
  });
});
