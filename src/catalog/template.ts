import { readFile } from 'node:fs/promises';
import { CatalogError } from './read-catalog.js';

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

/**
 * A `--template` argument: a value naming a readable file is a template file; anything else
 * must be the template itself, recognisable by its `{{column}}` placeholders (a misspelt file
 * name is not a prompt).
 */
export async function readTemplateArgument(value: string): Promise<string> {
  try {
    return (await readFile(value, 'utf8')).trim();
  } catch {
    if (!value.includes('{{')) {
      throw new CatalogError(
        `--template "${value}" is neither a readable file nor a template with {{column}} placeholders`,
      );
    }
    return value;
  }
}
