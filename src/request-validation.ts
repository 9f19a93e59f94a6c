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
