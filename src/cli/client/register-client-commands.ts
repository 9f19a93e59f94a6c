import { InvalidArgumentError, Option, type Command } from 'commander';
import { ApiClient } from './api-client.js';
import { cancelCommand, listCommand, manifestCommand, statusCommand } from './batch-commands.js';
import { clientConfigFromEnv, DEFAULT_API_URL } from './client-config.js';
import {
  scheduleCreateCommand,
  scheduleDeleteCommand,
  scheduleListCommand,
  scheduleShowCommand,
} from './schedule-commands.js';
import { stopQuietlyWhenStdoutCloses } from './output.js';
import { estimateCommand, submitCommand } from './submit-commands.js';
import { addModeOptions } from '../mode-options.js';

const positive = (name: string, integer: boolean) => (value: string) => {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0 || (integer && !Number.isInteger(parsed))) {
    throw new InvalidArgumentError(`${name} must be a positive ${integer ? 'integer' : 'number'}`);
  }
  return parsed;
};

/** Repeated `--variable key=value` flags, gathered into one object. */
const collectVariable = (value: string, previous: Record<string, string> = {}) => {
  const at = value.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError(`expected key=value, got "${value}"`);
  return { ...previous, [value.slice(0, at).trim()]: value.slice(at + 1) };
};

const CLIENT_HELP = `
Commands that talk to a running API (submit, estimate, status, list, manifest, cancel,
schedules) read RENDERMILL_URL (default ${DEFAULT_API_URL}) and RENDERMILL_API_KEY.
Exit codes: 0 done (submit --wait: every item rendered or cached); 1 could not be done;
2 the batch ended with failed or over-budget items; 3 the batch was cancelled;
130 interrupted (the batch carries on in the API).`;

/**
 * Every client command starts here: built when the command runs, so that `--help` works
 * without RENDERMILL_API_KEY.
 */
const client = () => {
  stopQuietlyWhenStdoutCloses();
  return new ApiClient(clientConfigFromEnv());
};

/** The options `submit` and `estimate` share. */
function batchOptions(command: Command): Command {
  return addModeOptions(command)
    .argument(
      '<file>',
      'catalog: .csv with a header row, .jsonl/.ndjson (rows or OpenAI Batch API lines), .json (array of rows, or a batch request object)',
    )
    .option(
      '-t, --template <file|text>',
      'prompt template with {{column}} placeholders, or a file holding one',
    )
    .option('-s, --size <WxH>', 'image size, e.g. 256x256')
    .option('-m, --model <id>', 'model id from the registry')
    .option('-q, --quality <quality>', 'quality, e.g. low | medium | high for gpt-image models')
    .option('-n, --n <count>', 'images per row', positive('--n', true))
    .option(
      '-b, --budget <usd>',
      'stop spending at this many US dollars',
      positive('--budget', false),
    )
    .option('--id-column <column>', 'the column naming each row (default: sku, else id, else line)')
    .addOption(
      new Option(
        '--on-invalid <what>',
        'invalid rows: reject the whole batch (default), or skip them and queue the rest',
      ).choices(['reject', 'skip']),
    )
    .option('--webhook <url>', 'URL to receive the signed batch.completed webhook')
    .addOption(
      new Option('--cache <policy>', 'reuse cached images, or refresh them').choices([
        'reuse',
        'refresh',
      ]),
    )
    .option('--json', 'print the API’s JSON answer');
}

/**
 * The commands that talk to a running `rendermill api` over HTTP, at RENDERMILL_URL with
 * RENDERMILL_API_KEY. Each sets the exit code documented in exit-codes.ts; an error reaches
 * main.ts's handler, which prints it in one line and exits 1.
 */
export function registerClientCommands(program: Command): void {
  batchOptions(
    program
      .command('submit')
      .description('submit a catalog as a batch to the API; prints the batch id'),
  )
    .option('-w, --wait', 'follow the batch to its end with a progress bar, then print a summary')
    .action(async (file: string, options) => {
      process.exitCode = await submitCommand(client(), file, options);
    });

  batchOptions(
    program
      .command('estimate')
      .description('price a catalog with the cache’s answer, without submitting it'),
  ).action(async (file: string, options) => {
    process.exitCode = await estimateCommand(client(), file, options);
  });

  program
    .command('status')
    .description('where a batch stands: counts, spend, manifest')
    .argument('<batch-id>')
    .option('--json', 'print the API’s JSON answer')
    .action(async (id: string, options) => {
      process.exitCode = await statusCommand(client(), id, options);
    });

  program
    .command('list')
    .description('the newest batches')
    .addOption(
      new Option('--status <status>', 'only batches in this state').choices([
        'queued',
        'running',
        'completed',
        'cancelling',
        'cancelled',
      ]),
    )
    .option('--schedule <id>', 'only batches started by this schedule')
    .option('--limit <n>', 'at most this many', positive('--limit', true), 20)
    .option('--json', 'print the batches as a JSON array')
    .action(async (options) => {
      process.exitCode = await listCommand(client(), options);
    });

  program
    .command('manifest')
    .description('download a batch’s manifest: every item, its images and its cost')
    .argument('<batch-id>')
    .addOption(
      new Option('--format <format>', 'json or csv').choices(['json', 'csv']).default('json'),
    )
    .option('-o, --out <file>', 'write it to this file (default: stdout)')
    .action(async (id: string, options) => {
      process.exitCode = await manifestCommand(client(), id, options);
    });

  program
    .command('cancel')
    .description('cancel a batch: queued items are cancelled, items being rendered finish')
    .argument('<batch-id>')
    .option('--json', 'print the API’s JSON answer')
    .action(async (id: string, options) => {
      process.exitCode = await cancelCommand(client(), id, options);
    });

  const schedules = program
    .command('schedules')
    .description('recurring batches: list, create, show, delete');

  schedules
    .command('list')
    .description('the schedules and their next run')
    .option('--json', 'print the schedules as a JSON array')
    .action(async (options) => {
      process.exitCode = await scheduleListCommand(client(), options);
    });

  schedules
    .command('create')
    .description('create a schedule from flags, or from --file with the whole body')
    .option('--file <schedule.json>', 'the whole schedule as JSON; other flags amend it')
    .option('--name <name>', 'a name people recognise')
    .option('--cron <expression>', 'when it runs, e.g. "0 9 * * 1" (Mondays 09:00)')
    .option('--timezone <iana>', 'time zone of the cron expression, e.g. Europe/Berlin')
    .option('-t, --template <file|text>', 'prompt template, or a file holding one')
    .option(
      '--variations <n>',
      'images rendered from the template per run',
      positive('--variations', true),
    )
    .option(
      '--items <file.json>',
      'a JSON array of the items each run renders (instead of --variations)',
    )
    .option(
      '-b, --budget <usd>',
      'spending cap of each run, in US dollars',
      positive('--budget', false),
    )
    .option('-s, --size <WxH>', 'image size, e.g. 1536x1024')
    .option('-m, --model <id>', 'model id from the registry')
    .option('-q, --quality <quality>', 'quality, e.g. low | medium | high')
    .option('-n, --n <count>', 'images per item', positive('--n', true))
    .option('--variable <key=value>', 'a value for a {{placeholder}} (repeatable)', collectVariable)
    .option('--end-date <date-time>', 'no runs after this instant, e.g. 2027-03-31T23:59:59+02:00')
    .option('--webhook <url>', 'URL to receive each run’s signed webhook')
    .option('--json', 'print the API’s JSON answer')
    .action(async (options) => {
      process.exitCode = await scheduleCreateCommand(client(), options);
    });

  schedules
    .command('show')
    .description('one schedule, as JSON')
    .argument('<schedule-id>')
    .action(async (id: string) => {
      process.exitCode = await scheduleShowCommand(client(), id);
    });

  schedules
    .command('delete')
    .description('delete a schedule: no more runs; batches it started are kept')
    .argument('<schedule-id>')
    .action(async (id: string) => {
      process.exitCode = await scheduleDeleteCommand(client(), id);
    });

  program.addHelpText('after', CLIENT_HELP);
}
