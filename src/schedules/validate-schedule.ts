import { cappedList } from '../request-validation.js';
import { resolveBatch } from '../batches/submit-batch.js';
import type { ResolveDeps } from '../batches/resolve-items.js';
import { RequestValidationError } from '../errors.js';
import type { FieldProblem } from '../errors.js';
import { parseRequest, validationError } from '../request-validation.js';
import { batchForRun, scheduleFieldOf } from './schedule-batch.js';
import { timeZoneName, checkCron, nextRuns } from './schedule-calendar.js';
import { cronIntervalProblem } from './schedule-quotas.js';
import { scheduleRequestSchema, type ScheduleDefinition } from './schedule-request.js';
import {
  BUILT_IN_PLACEHOLDERS,
  RUN_PLACEHOLDERS,
  ITEM_PLACEHOLDERS,
  unknownPlaceholders,
  variesByItem,
} from './schedule-template.js';

export interface ValidateScheduleDeps {
  /** What a batch is resolved with: the first run's batch is checked exactly as a batch is. */
  resolve: ResolveDeps;
  /** Throws RequestValidationError (field `webhook_url`) for a URL rendermill must not call. */
  checkWebhookUrl: (url: string) => Promise<void>;
  /** The shortest time allowed between two runs (RENDERMILL_MIN_SCHEDULE_INTERVAL_SECONDS). */
  minIntervalMs: number;
}

/** A schedule accepted: its definition as stored, and when it first runs. */
export interface ValidSchedule {
  definition: ScheduleDefinition;
  firstRun: Date;
}

const placeholderList = (names: Record<string, string>) =>
  cappedList(Object.keys(names), (name) => `{{${name}}}`);

/**
 * Checks a `POST /v1/schedules` body completely, so that nothing can go wrong at 09:00 on
 * Monday that could have been refused now: the cron in its time zone, the end date, the
 * template's placeholders, and — by rendering it — the batch the first run would submit,
 * validated as any batch is (models, sizes, prompt lengths, a model retired by then).
 * Throws RequestValidationError naming every problem it can find.
 */
export async function validateSchedule(
  deps: ValidateScheduleDeps,
  tenant: string,
  body: unknown,
  now: Date,
): Promise<ValidSchedule> {
  const request = parseRequest(scheduleRequestSchema, body, 'invalid_schedule');
  const problems: FieldProblem[] = [];
  const problem = (field: string, message: string) => problems.push({ field, message });

  const timeZone = timeZoneName(request.timezone);
  if (!timeZone) {
    problem(
      'timezone',
      `unknown time zone "${request.timezone}": use an IANA name such as Europe/Berlin or UTC`,
    );
  } else {
    const cron = checkCron(request.cron, timeZone);
    if (!cron.ok) problem('cron', cron.message);
    else {
      const tooOften = cronIntervalProblem(
        { cron: request.cron, timeZone },
        deps.minIntervalMs,
        now,
      );
      if (tooOften) problem('cron', tooOften);
    }
  }
  const endDate = request.end_date ? new Date(request.end_date) : undefined;
  if (endDate && endDate <= now) {
    problem('end_date', `${request.end_date} is in the past: the schedule would never run`);
  }
  if (request.items && request.variations !== undefined) {
    problem('variations', 'give items or variations, not both');
  } else if (!request.items && request.variations === undefined) {
    problem(
      'items',
      'give items (a list, each with an id and optionally its own prompt) or variations ' +
        '(a number of items made from the template)',
    );
  }

  const variables = request.variables ?? {};
  for (const name of Object.keys(variables)) {
    if (BUILT_IN_PLACEHOLDERS.includes(name)) {
      problem(`variables.${name}`, `{{${name}}} is filled by each run; choose another name`);
    }
  }
  const checkPlaceholders = (field: string, text: string) => {
    const unknown = unknownPlaceholders(text, variables);
    if (unknown.length === 0) return;
    const own = Object.keys(variables);
    problem(
      field,
      `${cappedList(unknown, (name) => `{{${name}}}`)} ${unknown.length > 1 ? 'are' : 'is'} not ` +
        `a variable: define it in variables, or use one of ${placeholderList(RUN_PLACEHOLDERS)}, ` +
        placeholderList(ITEM_PLACEHOLDERS) +
        (own.length > 0 ? `, or the variables ${cappedList(own, (n) => `{{${n}}}`)}` : ''),
    );
  };
  checkPlaceholders('template', request.template);
  request.items?.forEach((item, index) => {
    if (item.prompt !== undefined) checkPlaceholders(`items[${index}].prompt`, item.prompt);
  });
  const variations = request.items ? undefined : request.variations;
  if (variations !== undefined && variations > 1 && !variesByItem(request.template)) {
    // Identical prompts are one request: the cache would render one image and reuse it k-1 times.
    problem(
      'template',
      `the ${variations} variations would all be the same request, rendered once and reused: ` +
        'put {{variation}} (1 … k) or {{item}} (v1 … vk) in the template',
    );
  }
  if (request.webhook_url) {
    try {
      await deps.checkWebhookUrl(request.webhook_url);
    } catch (error) {
      if (!(error instanceof RequestValidationError)) throw error;
      problem('webhook_url', error.message.replace(/^webhook_url: /, ''));
    }
  }
  if (problems.length > 0 || !timeZone) throw validationError(problems, 'invalid_schedule');

  const definition: ScheduleDefinition = {
    ...request,
    cron: request.cron.trim(),
    timezone: timeZone,
  };
  const [firstRun] = nextRuns({ cron: definition.cron, timeZone, endDate }, now, 1);
  if (!firstRun) {
    throw validationError(
      [
        {
          field: 'end_date',
          message: `no run of "${definition.cron}" (${timeZone}) falls before it`,
        },
      ],
      'invalid_schedule',
    );
  }
  await checkFirstRun(deps, tenant, definition, firstRun);
  return { definition, firstRun };
}

/**
 * Resolves the batch the first run would submit, as submission would (on the first run's date,
 * so a model retired by then is refused), and names its problems by the schedule's fields.
 */
async function checkFirstRun(
  deps: ValidateScheduleDeps,
  tenant: string,
  definition: ScheduleDefinition,
  firstRun: Date,
): Promise<void> {
  try {
    // No cache lookups: only whether the batch would be accepted matters here.
    await resolveBatch(
      { ...deps.resolve, cache: undefined, now: () => firstRun },
      tenant,
      batchForRun(definition, firstRun),
    );
  } catch (error) {
    if (!(error instanceof RequestValidationError)) throw error;
    const details =
      error.details.length > 0 ? error.details : [{ field: error.field, message: error.message }];
    const when = ` (in the batch of the first run, ${firstRun.toISOString()})`;
    // A default, or the template, is every item's: its problem is listed once, not per item.
    const problems = new Map<string, FieldProblem>();
    for (const detail of details) {
      const field = scheduleFieldOf(definition, { field: detail.field ?? '', message: '' });
      problems.set(`${field}\n${detail.message}`, { field, message: detail.message + when });
    }
    throw validationError([...problems.values()], error.code);
  }
}
