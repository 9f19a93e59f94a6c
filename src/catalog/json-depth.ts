/**
 * The deepest JSON rendermill parses. Its own documents nest a handful of levels (a batch, its
 * items, their metadata); the ceiling is there because `JSON.parse` takes seconds — holding the
 * event loop, and with it every other request — on a body of a few megabytes of `[[[[…`.
 */
export const MAX_JSON_DEPTH = 64;

const OPEN_ARRAY = 0x5b; // [
const OPEN_OBJECT = 0x7b; // {
const CLOSE_ARRAY = 0x5d; // ]
const CLOSE_OBJECT = 0x7d; // }
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \

/**
 * Whether `text` opens more than `maxDepth` arrays and objects inside one another, found in one
 * pass that stops at the first level too deep: it never costs more than reading the text up to
 * there, whatever follows. Brackets inside strings do not count. The text need not be valid
 * JSON: this only decides whether it is worth handing to `JSON.parse`, which judges the rest.
 */
export function jsonNestsDeeperThan(text: string, maxDepth: number = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === BACKSLASH) i++;
      else if (code === QUOTE) inString = false;
      continue;
    }
    if (code === QUOTE) inString = true;
    else if (code === OPEN_ARRAY || code === OPEN_OBJECT) {
      depth++;
      if (depth > maxDepth) return true;
    } else if ((code === CLOSE_ARRAY || code === CLOSE_OBJECT) && depth > 0) depth--;
  }
  return false;
}

/** The message of every refusal of too deep a JSON document, the same wherever it came in. */
export const tooDeepMessage = (maxDepth: number = MAX_JSON_DEPTH) =>
  `JSON nests deeper than ${maxDepth} levels of arrays and objects`;
