// Copies the Lua scripts next to their compiled loader: `tsc` emits only JavaScript, and
// src/redis/lua-scripts.ts finds the scripts in `lua/` beside itself, in dist/ as in src/
// (the Docker image carries dist/ alone). Part of `npm run build`.
import { cpSync, rmSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const from = fileURLToPath(new URL('../../src/redis/lua/', import.meta.url));
const to = fileURLToPath(new URL('../../dist/src/redis/lua/', import.meta.url));
// A script deleted from src/ must not live on in dist/.
rmSync(to, { recursive: true, force: true });
cpSync(from, to, {
  recursive: true,
  filter: (path) => path.endsWith('.lua') || statSync(path).isDirectory(),
});
