import type { BatchItemInput, BatchRequest } from '../contracts/batch-request.js';
import type { FieldProblem } from '../errors.js';
import type { ScheduleDefinition } from './schedule-request.js';
import { renderPrompt, runValues } from './schedule-template.js';

/**
 * The batch one run of a schedule submits: the schedule's render defaults, budget, cache
 * policy, derived copies, webhook and metadata as they are, and its items with their prompts
 * filled for the run's date in the schedule's time zone.
 */
export function batchForRun(definition: ScheduleDefinition, runAt: Date): BatchRequest {
  const {
    name: _name,
    cron: _cron,
    timezone,
    end_date: _endDate,
    template,
    variables = {},
    items,
    variations,
    ...batchFields
  } = definition;
  const run = runValues(runAt, timezone);
  const sources: BatchItemInput[] =
    items ?? Array.from({ length: variations ?? 1 }, (_, i) => ({ id: `v${i + 1}` }));
  return {
    ...batchFields,
    items: sources.map((item, index) => {
      // A variation takes no prompt: an item that is one keeps it absent.
      const operation = item.operation ?? definition.operation;
      if (operation === 'variation' && item.prompt === undefined) return item;
      const text = item.prompt ?? template;
      return {
        ...item,
        prompt: renderPrompt(text, { run, variables, item: item.id, variation: index + 1 }),
      };
    }),
  };
}

/**
 * Names a problem of a run's batch the way the schedule's request names it: a prompt an item
 * took from the template is the template's problem; the rest have the same names in both.
 */
export function scheduleFieldOf(definition: ScheduleDefinition, problem: FieldProblem): string {
  const match = /^items\[(\d+)\]\.(.+)$/.exec(problem.field);
  if (!match) return problem.field;
  const [, index, rest] = match as unknown as [string, string, string];
  const item = definition.items?.[Number(index)];
  if (rest === 'prompt' && item?.prompt === undefined) return 'template';
  // Variations are made from the template alone: anything else about them is the defaults'.
  return definition.items ? problem.field : 'variations';
}
