import { readFileSync } from 'node:fs';

/** Where package.json is from this module: `src/config/` in a checkout, `dist/src/config/` built. */
const PACKAGE_JSON = import.meta.url.includes('/dist/src/')
  ? '../../../package.json'
  : '../../package.json';

/** rendermill's version, from its package.json. */
export const PACKAGE_VERSION: string = (
  JSON.parse(readFileSync(new URL(PACKAGE_JSON, import.meta.url), 'utf8')) as { version: string }
).version;
