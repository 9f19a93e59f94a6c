import type { ApiClient } from './api-client.js';
import type { ScheduleRequest, ScheduleView } from './api-types.js';
import { readTemplateArgument } from '../../catalog/template.js';
import { readJsonFile } from './batch-upload.js';
import { ApiError, ClientUsageError } from './client-errors.js';
import { CLIENT_EXIT } from './exit-codes.js';
import { note, printJson, printTable, say, shortTime } from './output.js';

export interface ScheduleCreateOptions {
  /** A JSON file with the whole body of `POST /v1/schedules`; the other flags amend it. */
  file?: string;
  name?: string;
  cron?: string;
  timezone?: string;
  /** A prompt template, or a file holding one. */
  template?: string;
  variations?: number;
  /** A JSON file holding the array of items each run renders. */
  items?: string;
  budget?: number;
  size?: string;
  model?: string;
  quality?: string;
  n?: number;
  /** `--variable key=value`, repeatable: values for the template's placeholders. */
  variable?: Record<string, string>;
  endDate?: string;
  webhook?: string;
  json?: boolean;
}

/** `rendermill schedules create`: the body from --file and/or the flags, checked for what the flags cannot say. */
export async function scheduleCreateCommand(
  client: ApiClient,
  options: ScheduleCreateOptions,
): Promise<number> {
  const request = await scheduleRequest(options);
  const schedule = await client.createSchedule(request).catch((error: unknown) => {
    const flag = error instanceof ApiError ? flagOf(error.field) : undefined;
    throw flag && error instanceof ApiError ? error.withHint(`flag ${flag}`) : error;
  });
  if (options.json) {
    printJson(schedule);
    return CLIENT_EXIT.ok;
  }
  say(schedule.id);
  note(`  ${describeSchedule(schedule)}`);
  const [next, ...later] = schedule.next_runs ?? [];
  if (next) note(`  next runs ${[next, ...later.slice(0, 2)].map(shortTime).join(', ')}`);
  return CLIENT_EXIT.ok;
}

/** The flag that sets a field of the schedule, to name it beside the API's field name. */
const FLAG_OF_FIELD: Record<string, string> = {
  name: '--name',
  cron: '--cron',
  timezone: '--timezone',
  template: '--template',
  variations: '--variations',
  items: '--items',
  variables: '--variable',
  budget_usd: '--budget',
  size: '--size',
  model: '--model',
  quality: '--quality',
  n: '--n',
  end_date: '--end-date',
  webhook_url: '--webhook',
};

/** `variables.season` → `--variable`; `items[2].prompt` → `--items`. */
const flagOf = (field: string | undefined) =>
  field ? FLAG_OF_FIELD[/^[A-Za-z_]+/.exec(field)?.[0] ?? ''] : undefined;

async function scheduleRequest(options: ScheduleCreateOptions): Promise<ScheduleRequest> {
  let request: ScheduleRequest = {};
  if (options.file) {
    const json = await readJsonFile(options.file);
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new ClientUsageError(`${options.file} must hold a JSON object: the schedule`);
    }
    request = json as ScheduleRequest;
  } else if (!options.name || !options.cron || !options.template) {
    throw new ClientUsageError(
      'schedules create needs --name, --cron and --template (or --file <schedule.json> with the whole schedule)',
    );
  }
  if (options.items !== undefined && options.variations !== undefined) {
    throw new ClientUsageError(
      'give --variations or --items, not both: a run renders N variations of the template, or the listed items',
    );
  }
  const items = options.items === undefined ? undefined : await readJsonFile(options.items);
  if (items !== undefined && !Array.isArray(items)) {
    throw new ClientUsageError(`--items ${options.items} must hold a JSON array of items`);
  }
  const flags: ScheduleRequest = {
    name: options.name,
    cron: options.cron,
    timezone: options.timezone,
    template:
      options.template === undefined ? undefined : await readTemplateArgument(options.template),
    variations: options.variations,
    items,
    budget_usd: options.budget,
    size: options.size,
    model: options.model,
    quality: options.quality,
    n: options.n,
    end_date: options.endDate,
    webhook_url: options.webhook,
  };
  const variables = options.variable
    ? { variables: { ...(request.variables ?? {}), ...options.variable } }
    : {};
  return {
    ...request,
    ...Object.fromEntries(Object.entries(flags).filter(([, value]) => value !== undefined)),
    ...variables,
  };
}

const describeSchedule = (s: ScheduleView) =>
  `${s.name ?? s.id}: ${s.cron ?? '?'} (${s.timezone ?? 'UTC'})${s.budget_usd === undefined ? '' : `, at most $${s.budget_usd} a run`}`;

/** `rendermill schedules list`. */
export async function scheduleListCommand(
  client: ApiClient,
  options: { json?: boolean },
): Promise<number> {
  const data = await allSchedules(client);
  if (options.json) {
    printJson(data);
    return CLIENT_EXIT.ok;
  }
  if (data.length === 0) {
    note('no schedules');
    return CLIENT_EXIT.ok;
  }
  printTable(
    ['ID', 'NAME', 'CRON', 'TIMEZONE', 'NEXT RUN'],
    data.map((s) => [
      s.id,
      s.name ?? '-',
      s.cron ?? '-',
      s.timezone ?? '-',
      shortTime(s.next_runs?.[0]),
    ]),
  );
  return CLIENT_EXIT.ok;
}

/** Every schedule of the tenant, following the API's pages. */
async function allSchedules(client: ApiClient): Promise<ScheduleView[]> {
  const schedules: ScheduleView[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.listSchedules({ limit: 100, cursor });
    schedules.push(...page.data);
    cursor = page.next_cursor ?? undefined;
    // An empty page with a cursor would loop for ever.
    if (page.data.length === 0) break;
  } while (cursor !== undefined);
  return schedules;
}

/** `rendermill schedules show <id>`: the schedule as the API holds it. */
export async function scheduleShowCommand(client: ApiClient, id: string): Promise<number> {
  printJson(await client.getSchedule(id));
  return CLIENT_EXIT.ok;
}

/** `rendermill schedules delete <id>`: no more runs; batches it started are kept. */
export async function scheduleDeleteCommand(client: ApiClient, id: string): Promise<number> {
  await client.deleteSchedule(id);
  say(`deleted schedule ${id}`);
  return CLIENT_EXIT.ok;
}
