import type { z } from 'zod';
import { RequestValidationError } from './errors.js';
import type { FieldProblem } from './errors.js';

/** Problems listed in one error response; the rest are summarised by count. */
export const MAX_REPORTED_PROBLEMS = 50;

/** `items.3.prompt` → `items[3].prompt`, the way the API names fields. */
export function fieldName(path: readonly PropertyKey[]): string {
  return path
    .map((part, i) =>
      typeof part === 'number' ? `[${part}]` : `${i > 0 ? '.' : ''}${String(part)}`,
    )
    .join('');
}

export function zodProblems(error: z.ZodError): FieldProblem[] {
  return error.issues.map((issue) => ({ field: fieldName(issue.path), message: issue.message }));
}

/** One error naming the first problem, with every problem (up to 50) in `details`. */
export function validationError(
  problems: FieldProblem[],
  code: string,
  total = problems.length,
): RequestValidationError {
  const [first] = problems as [FieldProblem];
  const more = total > 1 ? ` (and ${total - 1} more problem(s), see details)` : '';
  const where =
    (first.line === undefined ? '' : `line ${first.line}: `) +
    (first.field ? `${first.field}: ` : '');
  return new RequestValidationError(
    `${where}${first.message}${more}`,
    first.field || undefined,
    code,
    problems.slice(0, MAX_REPORTED_PROBLEMS),
  );
}

/** Parses with a zod schema, or throws a 400 naming every field that is wrong. */
export function parseRequest<S extends z.ZodType>(
  schema: S,
  data: unknown,
  code = 'invalid_request',
): z.infer<S> {
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw validationError(zodProblems(parsed.error), code);
  return parsed.data;
}

/**
 * Lists echoed in error messages (a catalog's columns, placeholders, known names), capped: an
 * error about a 100,000-column CSV must not be 1.5 MB of column names, which would take the
 * event loop seconds to build, log and send.
 */

/** Values named before "… and N more". */
export const MAX_LISTED_VALUES = 20;
/** Characters of one value shown before it is cut with "…". */
export const MAX_LISTED_VALUE_CHARS = 80;

/**
 * A value a sender gave, quoted for an error message (as JSON), cut at MAX_LISTED_VALUE_CHARS:
 * a field may hold a megabyte, and 50 problems quoting it whole would make a 50 MB answer.
 */
export function quotedValue(value: unknown): string {
  const quoted = JSON.stringify(value) ?? String(value);
  return quoted.length > MAX_LISTED_VALUE_CHARS
    ? `${quoted.slice(0, MAX_LISTED_VALUE_CHARS)}…`
    : quoted;
}

/** `a, b, c … and 99,997 more`; each value formatted by `format`, cut if very long. */
export function cappedList(
  values: readonly string[],
  format: (value: string) => string = (value) => value,
  max = MAX_LISTED_VALUES,
): string {
  const shown = values
    .slice(0, max)
    .map((value) =>
      format(
        value.length > MAX_LISTED_VALUE_CHARS
          ? `${value.slice(0, MAX_LISTED_VALUE_CHARS)}…`
          : value,
      ),
    )
    .join(', ');
  const rest = values.length - max;
  return rest > 0 ? `${shown} … and ${rest.toLocaleString('en-US')} more` : shown;
}
