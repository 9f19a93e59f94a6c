/** An error answered in OpenAI's shape: {error: {message, type, param, code}}. */
export class SimulatedError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly code: string | null,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const invalid = (message: string, param: string) =>
  new SimulatedError(400, 'invalid_request_error', null, message, param);
