#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { CatalogError } from '../catalog/read-catalog.js';
import { ConfigError } from '../config/config.js';
import { ENV_DEFAULTS } from '../config/env-schema.js';
import { ROUTING_STRATEGIES } from '../config/route-kinds.js';
import { RegistryFileError } from '../models/model-registry.js';
import { MissingDependencyError } from '../runtime/missing-dependency-error.js';
import { ApiError, ApiUnreachableError, ClientUsageError } from './client/client-errors.js';
import { registerClientCommands } from './client/register-client-commands.js';
import { CLIENT_EXIT } from './client/exit-codes.js';
import { newKeyCommand } from './keys-command.js';
import { addModeOptions } from './mode-options.js';

// The AWS SDK warns once per process that it will need Node 22 from 2027. rendermill supports
// Node 20.19+ until then (README), so the warning is noise for our users; set the variable to
// "false" to see it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// The long-running commands load the service stack (AWS SDK, BullMQ, sharp) only when run:
// the API clients start in a fraction of the time.
async function serve(options: import('./serve-command.js').ServeOptions): Promise<void> {
  const { serveCommand } = await import('./serve-command.js');
  await serveCommand(options);
}

const number = (name: string) => (value: string) => {
  const parsed = Number(value);
  if (!Number.isFinite(parsed)) throw new InvalidArgumentError(`${name} must be a number`);
  return parsed;
};

const program = new Command('rendermill')
  .description(
    'Batch image rendering: tier-aware, budget-capped, paid once per image, stored in S3.',
  )
  .showHelpAfterError();

addModeOptions(
  program
    .command('render')
    .description(
      'render a catalog as one batch, with everything not configured started in-process',
    ),
)
  .argument('<catalog>', 'catalog file: .csv with a header row, .jsonl, or .json array')
  .requiredOption(
    '-t, --template <file|text>',
    'prompt template with {{column}} placeholders, or a file holding one',
  )
  .option('-s, --size <WxH>', 'image size, e.g. 256x256 (default: the model’s 1024x1024)')
  .option(
    '-m, --model <id>',
    `model id from the registry (default: RENDERMILL_DEFAULT_MODEL, ${ENV_DEFAULTS.RENDERMILL_DEFAULT_MODEL})`,
  )
  .option('-q, --quality <quality>', 'quality, e.g. low | medium | high for gpt-image models')
  .option('-n, --n <count>', 'images per row', number('--n'))
  .option('-b, --budget <usd>', 'stop spending at this many US dollars', number('--budget'))
  .addOption(
    new Option(
      '-r, --routing <strategy>',
      'how items choose among the routes: priority | cheapest | spread (default: the providers file’s)',
    ).choices(ROUTING_STRATEGIES),
  )
  .option(
    '--id-column <column>',
    'the column naming each row (default: sku, else id, else row number)',
  )
  .option(
    '-o, --out <dir>',
    'copy images and manifest here (default: <RENDERMILL_DATA_DIR>/output/<batch>, ' +
      `${ENV_DEFAULTS.RENDERMILL_DATA_DIR}/output/<batch> unless set)`,
  )
  .action(async (catalog: string, options) => {
    const { renderCommand } = await import('./render-command.js');
    process.exitCode = await renderCommand(catalog, options);
  });

program
  .command('api')
  .description('run the HTTP API (needs REDIS_URL and S3 settings shared with the workers)')
  .action(() => serve({ api: true, worker: false, embed: false }));

program
  .command('worker')
  .description(
    'run one worker process; start several to scale (needs REDIS_URL, S3 settings and OPENAI_API_KEY)',
  )
  .action(() => serve({ api: false, worker: true, embed: false }));

program
  .command('start')
  .description('run the API and a worker in one process, embedding what is not configured')
  .action(() => serve({ api: true, worker: true, embed: true }));

program
  .command('keys')
  .description('manage API keys')
  .command('new')
  .description(
    'make an API key for a tenant; prints the key once and the RENDERMILL_API_KEYS entry',
  )
  .argument('<tenant>', 'tenant name: letters, digits, _ . -')
  .action((tenant: string) => newKeyCommand(tenant));

// submit, estimate, status, list, manifest, cancel, schedules: clients of a running API.
registerClientCommands(program);

/** Errors a person can act on print as one line; anything else is a bug and shows its stack. */
const EXPECTED_ERRORS = [
  ConfigError,
  CatalogError,
  MissingDependencyError,
  RegistryFileError,
  ClientUsageError,
  ApiError,
  ApiUnreachableError,
];

program.parseAsync().catch((error: unknown) => {
  const expected = EXPECTED_ERRORS.some((type) => error instanceof type);
  process.stderr.write(
    `rendermill: ${expected || !(error instanceof Error) ? String((error as Error).message ?? error) : (error.stack ?? error.message)}\n`,
  );
  process.exit(CLIENT_EXIT.failure);
});
