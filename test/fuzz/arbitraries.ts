import fc from 'fast-check';

/**
 * Random and adversarial inputs for rendermill's public entry points: arbitrary JSON, valid
 * bodies mutated, odd unicode, huge numbers, prototype keys, nulls in arrays and modest
 * nesting (deep-JSON denial of service is tested on its own, not here).
 */

/** Strings a parser, a template or a log line may trip on. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom(
    '',
    ' ',
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    'valueOf',
    '\u0000',
    'a\u0000b',
    '\u202eevil',
    '\ud800',
    '\udfff\ud800',
    '\ufeffbom',
    '🍵🏳️‍🌈👨‍👩‍👧',
    'e\u0301\u0301\u0301',
    '{{date}}',
    '{{__proto__}}',
    '{{constructor}}',
    '{{ toString }}',
    '{{',
    '}}{{',
    '{{{{x}}}}',
    '=cmd|"/c calc"!A1',
    '+1+1',
    '"quoted, with comma"',
    'line\nbreak',
    'cr\rhere',
    '../../etc/passwd',
    'http://169.254.169.254/latest/meta-data',
    'file:///etc/passwd',
    'x'.repeat(5_000),
    '1e309',
    'NaN',
    '-0',
    'null',
    'true',
  ),
);

/** Numbers at and past every edge. */
export const nastyNumber: fc.Arbitrary<number> = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(
    0,
    -0,
    -1,
    1,
    1.5,
    10,
    11,
    100,
    1e6,
    1e21,
    1e308,
    -1e308,
    5e-324,
    2 ** 31,
    2 ** 53 + 2,
    Number.MAX_SAFE_INTEGER,
  ),
);

const leaf: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: nastyString },
  { weight: 2, arbitrary: nastyNumber },
  fc.boolean(),
  fc.constant(null),
);

/** Object keys, prototype names among them. */
export const nastyKey: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 12 }) },
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'items', 'id', 'prompt'),
);

/**
 * Any JSON value, at most four levels deep. Built as an object with own properties (including
 * `__proto__`, defined rather than assigned) so that JSON.stringify writes every key.
 */
export const nastyJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    { weight: 4, arbitrary: leaf },
    fc.array(tie('value'), { maxLength: 5 }),
    fc
      .array(fc.tuple(nastyKey, tie('value')), { maxLength: 5 })
      .map((entries) => ownObject(entries)),
  ),
})).value;

/** An object whose keys are all own properties, even `__proto__`. */
export function ownObject(entries: [string, unknown][]): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (const [key, value] of entries) {
    Object.defineProperty(object, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return object;
}

/** A value to put where a field was: of the wrong type, or right but nasty. */
export const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: leaf },
  { weight: 1, arbitrary: nastyJson },
  fc.constant([null]),
  fc.constant({}),
  fc.constant([]),
);

/**
 * A valid body, mutated: fields set to nasty values, removed, or added (prototype names
 * included), at the top level or in the first of its lists' elements.
 */
export function mutated(valid: Record<string, unknown>): fc.Arbitrary<Record<string, unknown>> {
  const mutation = fc.oneof(
    fc.record({
      kind: fc.constant('set' as const),
      key: fc.constantFrom(...Object.keys(valid)),
      value: nastyValue,
    }),
    fc.record({ kind: fc.constant('set' as const), key: nastyKey, value: nastyValue }),
    fc.record({
      kind: fc.constant('delete' as const),
      key: fc.constantFrom(...Object.keys(valid)),
      value: fc.constant(undefined),
    }),
    fc.record({ kind: fc.constant('inner' as const), key: nastyKey, value: nastyValue }),
    fc.record({
      kind: fc.constant('nulls' as const),
      key: fc.constant(''),
      value: fc.integer({ min: 1, max: 20 }),
    }),
  );
  return fc.array(mutation, { minLength: 1, maxLength: 3 }).map((mutations) => {
    const body = jsonCopy(valid) as Record<string, unknown>;
    for (const { kind, key, value } of mutations) {
      if (kind === 'set') ownObjectSet(body, key, value);
      else if (kind === 'delete') delete body[key];
      else {
        const list = Object.values(body).find(Array.isArray) as unknown[] | undefined;
        if (!list) continue;
        if (kind === 'nulls') list.push(...Array.from({ length: value as number }, () => null));
        else if (typeof list[0] === 'object' && list[0] !== null) {
          ownObjectSet(list[0] as Record<string, unknown>, key, value);
        } else list[0] = jsonCopy(value);
      }
    }
    return body;
  });
}

/** A deep copy through JSON, which keeps `__proto__` keys as own properties. */
const jsonCopy = (value: unknown): unknown =>
  value === undefined ? undefined : JSON.parse(JSON.stringify(value));

/**
 * Sets a copy of `value`: an arbitrary may hand out the same object twice (`fc.constant([null])`),
 * and the lists of a body are pushed to.
 */
function ownObjectSet(object: Record<string, unknown>, key: string, value: unknown) {
  Object.defineProperty(object, key, {
    value: jsonCopy(value),
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/** A JSON text with a prototype key written into it, which JSON.stringify of an object cannot. */
export const prototypeJsonText: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom('__proto__', 'constructor', 'prototype'),
    fc.constantFrom('{"polluted": true}', '{"prototype": {"polluted": true}}', 'null', '[]', '"x"'),
    fc.constantFrom('top', 'item'),
  )
  .map(([key, value, where]) =>
    where === 'top'
      ? `{"${key}": ${value}, "items": [{"id": "a", "prompt": "a mug"}]}`
      : `{"items": [{"id": "a", "prompt": "a mug", "${key}": ${value}}]}`,
  );

/** A CSV cell or column name: quoted or not, commas, quotes and line breaks inside. */
const csvCell: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 4,
    arbitrary: nastyString.map((s) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s)),
  },
  nastyString, // unquoted, broken on purpose
  fc.constantFrom('"unterminated', 'a"b', '""', '"x""'),
);

/** `sku,title` rows, unique skus, nasty titles: mostly accepted with VALID_CATALOG_QUERY. */
const skuTitleCsv: fc.Arbitrary<string> = fc
  .array(csvCell, { minLength: 1, maxLength: 4 })
  .map((titles) => `sku,title\n${titles.map((t, i) => `sku-${i},${t}`).join('\n')}\n`);

/** A CSV catalog: a header (sometimes a very wide one) and a few rows of varying width. */
export const csvCatalog: fc.Arbitrary<string> = fc.oneof(skuTitleCsv, randomCsv());

function randomCsv(): fc.Arbitrary<string> {
  return fc
    .tuple(
      fc.oneof(
        { weight: 5, arbitrary: fc.array(csvCell, { minLength: 1, maxLength: 6 }) },
        fc.constantFrom(['sku', 'title'], ['sku', 'prompt'], ['id', 'prompt', 'colour']),
        fc
          .integer({ min: 500, max: 5_000 })
          .map((width) => Array.from({ length: width }, (_, i) => `c${i}`)),
      ),
      fc.array(fc.array(csvCell, { maxLength: 8 }), { maxLength: 5 }),
      fc.constantFrom('\n', '\r\n', '\r'),
      fc.boolean(),
    )
    .map(
      ([header, rows, eol, bom]) =>
        (bom ? '\ufeff' : '') + [header, ...rows].map((row) => row.join(',')).join(eol) + eol,
    );
}

/** A valid OpenAI Batch input line for an image generation. */
export const OPENAI_BATCH_LINE = {
  custom_id: 'req-1',
  method: 'POST',
  url: '/v1/images/generations',
  body: { model: 'gpt-image-2', prompt: 'a red mug', size: '256x256', quality: 'low' },
};

/** An OpenAI Batch edit line whose input images are anything: a value, a list, image_url objects. */
const openAiEditLine: fc.Arbitrary<Record<string, unknown>> = fc
  .oneof(
    nastyValue,
    fc.array(nastyValue, { maxLength: 3 }),
    fc.array(fc.record({ image_url: nastyValue }, { requiredKeys: [] }), { maxLength: 2 }),
  )
  .map((image) => ({
    ...OPENAI_BATCH_LINE,
    url: '/v1/images/edits',
    body: { ...OPENAI_BATCH_LINE.body, image },
  }));

/** Rows with unique skus and nasty titles, or OpenAI Batch lines with unique ids and nasty prompts. */
const plausibleNdjson: fc.Arbitrary<string> = fc
  .tuple(fc.array(nastyString, { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(
    ([texts, openAi]) =>
      texts
        .map((text, i) =>
          JSON.stringify(
            openAi
              ? {
                  ...OPENAI_BATCH_LINE,
                  custom_id: `req-${i}`,
                  body: { ...OPENAI_BATCH_LINE.body, prompt: `a mug ${text}` },
                }
              : { sku: `sku-${i}`, title: text },
          ),
        )
        .join('\n') + '\n',
  );

/** A JSON Lines catalog: rows, OpenAI Batch lines (mutated), garbage, blank lines. */
export const ndjsonCatalog: fc.Arbitrary<string> = fc.oneof(plausibleNdjson, randomNdjson());

function randomNdjson(): fc.Arbitrary<string> {
  return fc
    .array(
      fc.oneof(
        nastyJson.map((value) => JSON.stringify(value) ?? 'undefined'),
        mutated({ sku: 'a', prompt: 'a mug' }).map((row) => JSON.stringify(row)),
        mutated(OPENAI_BATCH_LINE).map((line) => JSON.stringify(line)),
        mutated(OPENAI_BATCH_LINE.body).map((body) =>
          JSON.stringify({ ...OPENAI_BATCH_LINE, body }),
        ),
        openAiEditLine.map((line) => JSON.stringify(line)),
        nastyString,
        fc.constantFrom('', '   ', '{', '[1,2', '{"a":1}{"b":2}', '\u0000'),
      ),
      { minLength: 1, maxLength: 6 },
    )
    .map((lines) => `${lines.join('\n')}\n`);
}

/** The query of a catalog that is accepted as it is. */
const VALID_CATALOG_QUERY = {
  template: 'A {{title}}',
  model: 'gpt-image-2',
  size: '256x256',
  quality: 'low',
  budget_usd: '1',
};

/** A query parameter's text for any value. */
const queryText = (value: unknown) =>
  typeof value === 'string' ? value : (JSON.stringify(value) ?? '');

/** Query parameters of a catalog submission: valid ones, nasty values, unknown names. */
export const catalogQuery: fc.Arbitrary<Record<string, string>> = fc.oneof(
  fc.constant(VALID_CATALOG_QUERY),
  mutated(VALID_CATALOG_QUERY).map((query) =>
    Object.fromEntries(Object.entries(query).map(([k, v]) => [k, queryText(v)])),
  ),
  randomCatalogQuery(),
);

function randomCatalogQuery(): fc.Arbitrary<Record<string, string>> {
  return fc
    .tuple(
      fc.record(
        {
          template: fc.oneof(
            nastyString,
            fc.constantFrom('A {{title}}', 'A {{title}} in {{colour}}'),
          ),
          id_column: nastyString,
          on_invalid: fc.constantFrom('reject', 'skip', 'maybe'),
          model: fc.constantFrom('gpt-image-2', 'dall-e-2', 'constructor', ''),
          size: fc.constantFrom('256x256', '0x0', '99999999999x1', 'big'),
          quality: fc.constantFrom('low', 'ultra'),
          n: fc.oneof(fc.constantFrom('1', '0', '-1', '1e9', 'NaN', '2.5'), nastyString),
          budget_usd: fc.constantFrom('1', '0', '-5', '1e400', 'Infinity', 'abc'),
          webhook_url: fc.constantFrom(
            'https://example.com/hook',
            'http://127.0.0.1/h',
            'javascript:alert(1)',
          ),
        },
        { requiredKeys: [] },
      ),
      fc.array(fc.tuple(nastyKey, nastyString), { maxLength: 2 }),
    )
    .map(([known, extra]) => ({ ...known, ...Object.fromEntries(extra) }));
}

/** A cron expression, sometimes valid, often not. */
export const cronExpression: fc.Arbitrary<string> = fc.oneof(
  fc
    .array(
      fc.oneof(
        fc.constantFrom(
          '*',
          '*/1',
          '*/2',
          '0',
          '59',
          '60',
          '99999999999',
          'L',
          '5L',
          '1#5',
          '?',
          'H',
          '1-5',
          '5-1',
          'MON-FRI',
          'JAN',
          '*/0',
          '-1',
          ',',
          '',
        ),
        fc.integer({ min: -5, max: 100 }).map(String),
      ),
      { minLength: 1, maxLength: 7 },
    )
    .map((fields) => fields.join(' ')),
  fc.constantFrom(
    '* * * * * *',
    '* * * * *',
    '@yearly',
    '@secondly',
    '@reboot',
    '0 9 * * 1',
    '0 0 30 2 *',
  ),
  nastyString,
);
