// Placeholder with the agreed interface; the real client replaces this file.
export type ProviderBatchStatus =
  | 'validating'
  | 'failed'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'expired'
  | 'cancelling'
  | 'cancelled';

export interface ProviderBatchState {
  id: string;
  status: ProviderBatchStatus;
  endpoint: string;
  inputFileId: string;
  outputFileId?: string | undefined;
  errorFileId?: string | undefined;
  counts: { total: number; completed: number; failed: number };
  metadata: Record<string, string>;
  errors: { code: string; message: string; line?: number | undefined }[];
  times: Partial<
    Record<
      | 'created'
      | 'in_progress'
      | 'finalizing'
      | 'completed'
      | 'failed'
      | 'expired'
      | 'cancelling'
      | 'cancelled',
      number
    >
  >;
}

export const ENDED_STATUSES: ReadonlySet<ProviderBatchStatus> = new Set([
  'completed',
  'failed',
  'expired',
  'cancelled',
]);

export type BatchLineResult =
  | { customId: string; ok: true; body: unknown }
  | { customId: string; ok: false; statusCode?: number; code: string; message: string };

export function parseBatchLine(line: string): BatchLineResult {
  throw new Error(`not built yet: ${line.length}`);
}

export class OpenAIBatchApi {
  constructor(readonly options: { baseUrl: string; apiKey: string; timeoutMs?: number }) {}
  uploadFile(filename: string, content: Buffer): Promise<{ id: string; bytes: number }> {
    throw new Error(`not built yet ${filename} ${content.length}`);
  }
  findFile(filename: string): Promise<{ id: string; bytes: number } | undefined> {
    throw new Error(`not built yet ${filename}`);
  }
  createBatch(input: {
    inputFileId: string;
    endpoint: '/v1/images/generations' | '/v1/images/edits';
    metadata: Record<string, string>;
  }): Promise<ProviderBatchState> {
    throw new Error(`not built yet ${input.inputFileId}`);
  }
  findBatch(
    metadata: Record<string, string>,
    maxScan?: number,
  ): Promise<ProviderBatchState | undefined> {
    throw new Error(`not built yet ${JSON.stringify(metadata)} ${maxScan}`);
  }
  getBatch(id: string): Promise<ProviderBatchState> {
    throw new Error(`not built yet ${id}`);
  }
  cancelBatch(id: string): Promise<ProviderBatchState> {
    throw new Error(`not built yet ${id}`);
  }
  fileLines(fileId: string): AsyncIterable<string> {
    throw new Error(`not built yet ${fileId}`);
  }
}
