import { Readable } from 'node:stream';

/**
 * The catalog every upload sends: the product brief's bulk-thumbnail case (sku, title, colour,
 * category; a prompt template; dall-e-2 at 256x256). No worker runs, so nothing is rendered:
 * the model only has to pass validation, and the bench measures the API taking the rows in.
 */
export const CATALOG_OPTIONS = {
  model: 'dall-e-2',
  size: '256x256',
  template: 'A {{colour}} {{title}}, {{category}}, studio light',
} as const;

const CSV_HEADER = 'sku,title,colour,category\n';
const COLOURS = ['red', 'blue', 'green', 'black', 'white', 'yellow', 'orange'];
const TITLES = ['ceramic mug', 'canvas tote', 'desk lamp', 'wool scarf', 'water bottle'];
const CATEGORIES = ['kitchen', 'bags', 'lighting', 'accessories', 'outdoor'];

/** Rows put in one chunk of the body: ~20 KB, about what a client's file read hands over. */
const ROWS_PER_CHUNK = 500;

/** Row `i` of the catalog: a distinct product, so every prompt differs. */
function row(i: number) {
  return {
    sku: `sku-${String(i).padStart(6, '0')}`,
    // No commas in the values: the CSV needs no quoting.
    title: `${TITLES[i % TITLES.length]!} no. ${i}`,
    colour: COLOURS[i % COLOURS.length]!,
    category: CATEGORIES[i % CATEGORIES.length]!,
  };
}

/**
 * The catalog as a CSV body made while it is sent: a generator the request pulls from, so
 * the bench never holds more than one chunk of it, whatever the row count.
 */
export function csvCatalog(rows: number): Readable {
  return Readable.from(
    (function* () {
      yield Buffer.from(CSV_HEADER);
      for (let start = 0; start < rows; start += ROWS_PER_CHUNK) {
        let text = '';
        for (let i = start; i < Math.min(rows, start + ROWS_PER_CHUNK); i++) {
          const { sku, title, colour, category } = row(i);
          text += `${sku},${title},${colour},${category}\n`;
        }
        yield Buffer.from(text);
      }
    })(),
  );
}

/** Bytes of the CSV body for `rows` rows, for the report (computed, not built). */
export function csvBytes(rows: number): number {
  let bytes = CSV_HEADER.length;
  for (let i = 0; i < rows; i++) {
    const { sku, title, colour, category } = row(i);
    bytes += sku.length + title.length + colour.length + category.length + 4;
  }
  return bytes;
}

/**
 * The same rows as a JSON batch request (the in-memory path, at most 10,000 items): each
 * prompt is the one the template makes of the row, so both paths validate the same items.
 */
export function jsonBatchBody(rows: number): string {
  const items = Array.from({ length: rows }, (_, i) => {
    const { sku, title, colour, category } = row(i);
    return { id: sku, prompt: `A ${colour} ${title}, ${category}, studio light` };
  });
  return JSON.stringify({ model: CATALOG_OPTIONS.model, size: CATALOG_OPTIONS.size, items });
}

/** The query string carrying a CSV catalog's options. */
export function catalogQuery(): string {
  return Object.entries(CATALOG_OPTIONS)
    .map(([name, value]) => `${name}=${encodeURIComponent(value)}`)
    .join('&');
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
