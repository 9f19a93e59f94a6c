import { cappedList } from '../request-validation.js';
import type { BatchItemInput, BatchRequest } from '../contracts/batch-request.js';
import { CatalogError, type Catalog } from './read-catalog.js';
import type { PromptTemplate } from './template.js';

export interface CatalogBatchOptions {
  template: PromptTemplate;
  /** The column that names each row; default: `sku`, else `id`, else the row number. */
  idColumn?: string | undefined;
  defaults: Omit<BatchRequest, 'items'>;
}

/** Turns a catalog and a prompt template into a batch request: one item per row. */
export function catalogToBatch(catalog: Catalog, options: CatalogBatchOptions): BatchRequest {
  if (catalog.rows.length === 0) throw new CatalogError('the catalog has no rows');
  const missing = options.template.missingColumns(catalog.columns);
  if (missing.length > 0) {
    throw new CatalogError(
      `the template uses ${cappedList(missing, (m) => `{{${m}}}`)} but the catalog has no such column; columns: ${cappedList(catalog.columns)}`,
    );
  }
  const idColumn = options.idColumn ?? ['sku', 'id'].find((c) => catalog.columns.includes(c));
  if (options.idColumn && !catalog.columns.includes(options.idColumn)) {
    throw new CatalogError(`--id-column ${options.idColumn} is not a column of the catalog`);
  }
  const items: BatchItemInput[] = catalog.rows.map(({ line, values }) => {
    const id = idColumn ? values[idColumn] : `row-${line}`;
    if (!id) throw new CatalogError(`line ${line}: the ${idColumn} column is empty`);
    return { id, prompt: options.template.render(values) };
  });
  return { ...options.defaults, items };
}
