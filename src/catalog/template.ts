/** A prompt template with `{{column}}` placeholders, filled from one catalog row. */
export class PromptTemplate {
  readonly placeholders: string[];

  constructor(readonly text: string) {
    this.placeholders = [
      ...new Set([...text.matchAll(/\{\{\s*([\w.-]+)\s*\}\}/g)].map((m) => m[1]!)),
    ];
  }

  /** Columns the template needs that the catalog does not have. */
  missingColumns(columns: readonly string[]): string[] {
    return this.placeholders.filter((p) => !columns.includes(p));
  }

  render(row: Record<string, unknown>): string {
    return this.text
      .replace(/\{\{\s*([\w.-]+)\s*\}\}/g, (_, name: string) => String(row[name] ?? '').trim())
      .replace(/\s+/g, ' ')
      .trim();
  }
}
