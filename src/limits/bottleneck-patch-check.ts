import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * rendermill ships Bottleneck 2.19.5 with a patch (patches/bottleneck+2.19.5.patch, applied by
 * `npm install`): unpatched, its Redis mode fails on Redis ≥ 7 once its keys vanish. Refuse to
 * run without it rather than stall in production.
 */
const datastore = createRequire(import.meta.url).resolve('bottleneck/lib/RedisDatastore.js');
if (!readFileSync(datastore, 'utf8').includes('rendermill patch')) {
  throw new Error(
    `bottleneck at ${datastore} is not patched for Redis ≥ 7: run \`npx patch-package\` ` +
      '(npm install does it) before starting rendermill',
  );
}
