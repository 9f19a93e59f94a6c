/**
 * Lists echoed in error messages (a catalog's columns, placeholders, known names), capped: an
 * error about a 100,000-column CSV must not be 1.5 MB of column names, which would take the
 * event loop seconds to build, log and send.
 */

/** Values named before "… and N more". */
export const MAX_LISTED_VALUES = 20;
/** Characters of one value shown before it is cut with "…". */
export const MAX_LISTED_VALUE_CHARS = 80;

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
