import { describe, expect, it } from 'vitest';
import { isOpenAiBatchLine, openAiBatchItem } from '../../src/batches/openai-batch-line.js';

const line = (body: Record<string, unknown>, url = '/v1/images/edits') => ({
  custom_id: 'r1',
  method: 'POST',
  url,
  body: { model: 'gpt-image-2', prompt: 'a hat', ...body },
});

const problemsOf = (values: Record<string, unknown>) => {
  const result = openAiBatchItem(values);
  return 'problems' in result ? result.problems : [];
};

describe('OpenAI Batch lines a tenant controls', () => {
  for (const [name, image] of [
    ['null', null],
    ['[null]', [null]],
    ['a number', 3],
    ['true', true],
    ['[{}]', [{}]],
    ['{ image_url: null }', { image_url: null }],
    ['{ file_id }', { file_id: 'file-1' }],
  ] as const) {
    it(`image ${name} is a problem of body.image, never a TypeError`, () => {
      expect(problemsOf(line({ image }))).toEqual([
        expect.objectContaining({ field: 'body.image' }),
      ]);
    });
  }

  it('mask null or a number is a problem of body.mask', () => {
    for (const mask of [null, 0, false, [], {}]) {
      expect(problemsOf(line({ image: 'https://example.com/a.png', mask }))).toEqual([
        expect.objectContaining({ field: 'body.mask' }),
      ]);
    }
  });

  it('takes images as URLs and { image_url }', () => {
    expect(
      openAiBatchItem(
        line({
          image: ['https://example.com/a.png', { image_url: 'https://example.com/b.png' }],
          mask: { image_url: 'https://example.com/m.png' },
        }),
      ),
    ).toEqual({
      item: expect.objectContaining({
        image: ['https://example.com/a.png', 'https://example.com/b.png'],
        mask: 'https://example.com/m.png',
      }),
    });
  });

  for (const url of ['constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty']) {
    it(`url "${url}" is a problem of url (no lookup on Object.prototype)`, () => {
      expect(problemsOf(line({}, url))).toEqual([expect.objectContaining({ field: 'url' })]);
    });
  }

  it('tells an OpenAI Batch line by its own keys only', () => {
    const inherited = Object.create({ custom_id: 'x', url: 'y', body: {} }) as Record<
      string,
      unknown
    >;
    expect(isOpenAiBatchLine(inherited)).toBe(false);
    expect(isOpenAiBatchLine(line({}))).toBe(true);
  });
});

describe('a problem quotes what the sender gave', () => {
  it('cut short, so a megabyte in one field does not become a megabyte of error', () => {
    const huge = 'x'.repeat(1_000_000);
    const problems = problemsOf({ ...line({}), method: huge, url: huge });
    expect(problems.map((p) => p.field)).toEqual(['method', 'url']);
    for (const problem of problems) {
      expect(problem.message.length).toBeLessThan(300);
      expect(problem.message).toContain('"xxxx');
    }
  });
});
