/**
 * rendermill's layers, checked by `npm run check` (dependency-cruiser). docs/architecture.md
 * draws them.
 *
 * Every unit below is a top-level folder (or one of the few files at the top of src/). Units
 * are listed from the top of the tree to the bottom, and a unit may import only itself and
 * units listed AFTER it. That one ordering gives both rules the architecture needs: imports
 * point down the layers (entry points → job processors → domain → contracts and adapters →
 * foundation), and no two folders can ever import each other, directly or round a loop.
 * Inside a unit, module-level cycles are refused by `no-circular`.
 */
const LAYERS = [
  {
    layer: 'entry points',
    units: ['src/cli', 'workers', 'src/runtime', 'src/api', 'src/dashboard'],
  },
  { layer: 'job processors', units: ['jobs'] },
  {
    layer: 'domain',
    units: [
      'src/facade',
      'src/webhooks',
      'src/schedules',
      'src/render',
      'src/batches',
      'src/cache',
      'src/ledger',
      'src/catalog',
    ],
  },
  {
    layer: 'contracts and adapters',
    units: [
      'src/metrics',
      'src/queue',
      'src/providers',
      'src/limits',
      'src/storage',
      'src/net',
      'src/redis',
      'src/contracts',
      'src/models',
    ],
  },
  {
    layer: 'foundation',
    units: ['src/config', 'src/request-validation.ts', 'src/errors.ts', 'src/logging.ts'],
  },
];

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A unit's path pattern: a folder and everything in it, or one file. */
const unitPath = (unit) => (unit.endsWith('.ts') ? `^${escape(unit)}$` : `^${escape(unit)}/`);

const ordered = LAYERS.flatMap(({ layer, units }) => units.map((unit) => ({ layer, unit })));
const layerOrderRules = ordered.slice(1).map(({ layer, unit }, index) => {
  const above = ordered.slice(0, index + 1);
  return {
    name: `layer-order:${unit}`,
    severity: 'error',
    comment:
      `${unit} (${layer}) imports a unit above it: ${above.map((a) => a.unit).join(', ')}. ` +
      'Imports point down the list in .dependency-cruiser.cjs (see docs/architecture.md): ' +
      'move the shared piece down, or pass it in from above.',
    from: { path: unitPath(unit) },
    to: { path: above.map(({ unit: a }) => unitPath(a)).join('|') },
  };
});

/** Any module under src/ outside every unit: a new folder must take its place in LAYERS. */
const outsideEveryUnit = `^src/(?!${ordered
  .map(({ unit }) => unitPath(unit).slice('^src/'.length))
  .join('|')})`;

module.exports = {
  forbidden: [
    ...layerOrderRules,
    // Both ends: a module of an unlisted folder that imports, or is imported.
    ...[
      { from: {}, to: { path: outsideEveryUnit } },
      { from: { path: outsideEveryUnit }, to: {} },
    ].map((ends) => ({
      name: 'unit-not-in-layers',
      severity: 'error',
      comment:
        'A module under src/ that belongs to no unit of LAYERS in .dependency-cruiser.cjs, so ' +
        'no layer rule would hold it: give its folder a place in the list (docs/architecture.md).',
      ...ends,
    })),
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Modules that import each other, directly or round a loop: cut the loop.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'product-not-to-infra',
      severity: 'error',
      comment:
        'Product code (src/, jobs/, workers/) never imports what runs beside it or tests it ' +
        '(infra/, test/, bench/). The provider simulator is reached only by path, through ' +
        'src/runtime/embedded-provider.ts.',
      from: { path: '^(src|jobs|workers)/' },
      to: { path: '^(infra|test|bench)/' },
    },
    {
      name: 'simulator-is-a-leaf',
      severity: 'error',
      comment:
        'The provider simulator stands apart from rendermill: it reads only the model registry.',
      from: { path: '^infra/simulator/' },
      to: { path: '^(src|jobs|workers)/', pathNot: '^src/models/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that resolves to nothing.',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'product-not-to-dev-dependencies',
      severity: 'error',
      comment:
        'Product code must not need a devDependency at run time: the Docker image prunes them.',
      from: { path: '^(src|jobs|workers|infra/simulator)/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // node_modules must not be excluded: the rules on npm dependencies would see none of them.
    exclude: { path: '^(dist|coverage)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
  },
};
