/**
 * Typed errors. The class of an error, not its message, decides what happens next:
 * - `retryable` errors are tried again (with backoff) by the provider call or the job;
 * - the rest end the item with `code` and `message` in the manifest, or, for
 *   `RequestValidationError`, turn the request away with a 4xx before anything is queued.
 */
export abstract class RendermillError extends Error {
  abstract readonly code: string;
  /** Whether doing the same thing again may succeed. */
  readonly retryable: boolean = false;
}

/** One problem with a request: the field it names and, for catalogs, the line it is on. */
export interface FieldProblem {
  field: string;
  message: string;
  /** The catalog line it comes from, for items read from CSV or JSON Lines. */
  line?: number | undefined;
}

/** The token counts a gpt-image response reports in `usage`. */
export interface ProviderUsage {
  input_tokens?: number;
  output_tokens?: number;
  input_tokens_details?: { text_tokens?: number; image_tokens?: number };
}

/** Per-dimension figures of a provider's rate-limit headers. */
export interface RateFigures {
  requests?: number | undefined;
  images?: number | undefined;
  tokens?: number | undefined;
}

/**
 * What a provider's answer said about its rate limits (`x-ratelimit-limit-*`, `-remaining-*`,
 * `-reset-*`, `retry-after*`), read from every answer, and what the call used.
 */
export interface ProviderRateReport {
  /** The provider refused the call with a 429 rate_limit_exceeded. */
  refused: boolean;
  /** Declared limits, per minute. */
  limits: RateFigures;
  /** What the provider says is left in its current window. */
  remaining: RateFigures;
  /** How long until each limit is fully replenished, in ms. */
  resetMs: RateFigures;
  /** On a 429: how long the provider asked us to wait (retry-after-ms, retry-after, reset). */
  retryAfterMs?: number | undefined;
  /** Tokens the call used (input + output), from `usage`. */
  tokensUsed?: number | undefined;
}

/** Bad input from a producer: a 400 naming the field, nothing queued. */
export class RequestValidationError extends RendermillError {
  override name = 'RequestValidationError';
  readonly code: string;
  constructor(
    message: string,
    readonly field?: string,
    code = 'invalid_request',
    readonly details: readonly FieldProblem[] = [],
  ) {
    super(message);
    this.code = code;
  }
}

/** The request conflicts with the state of what it names (cancelling an ended batch): a 409. */
export class ConflictError extends RendermillError {
  override name = 'ConflictError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** 429 rate_limit_exceeded: wait (as long as the provider asked) and try again. */
export class ProviderRateLimitedError extends RendermillError {
  override name = 'ProviderRateLimitedError';
  readonly code = 'rate_limited';
  override readonly retryable = true;
  constructor(
    message: string,
    /** Everything the 429's headers said about the limits. */
    readonly report: ProviderRateReport,
  ) {
    super(message);
  }

  /** The wait the provider asked for, from retry-after-ms / retry-after / x-ratelimit-reset-*. */
  get retryAfterMs(): number | undefined {
    return this.report.retryAfterMs;
  }
}

/** 5xx, timeouts and connection resets: the provider may answer next time. */
export class ProviderUnavailableError extends RendermillError {
  override name = 'ProviderUnavailableError';
  readonly code = 'provider_unavailable';
  override readonly retryable = true;
  constructor(
    message: string,
    /**
     * The request left and no answer came back (a timeout, a connection cut mid-request): the
     * provider may have rendered and billed it. Counted as spent, never assumed free.
     */
    readonly maybeBilled = false,
  ) {
    super(message);
  }
}

/** The provider refused this request for good (content policy, moderation, invalid input). */
export class ProviderRejectedError extends RendermillError {
  override name = 'ProviderRejectedError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** 404 / model_not_found: the model is retired or this account cannot use it. */
export class ModelUnavailableError extends RendermillError {
  override name = 'ModelUnavailableError';
  readonly code = 'model_unavailable';
}

/** 401/403: the key is wrong or lacks permission; no item of this account can succeed. */
export class ProviderAuthError extends RendermillError {
  override name = 'ProviderAuthError';
  readonly code = 'provider_auth';
}

/** 429 insufficient_quota and spend-limit codes: retrying only burns time. */
export class ProviderQuotaError extends RendermillError {
  override name = 'ProviderQuotaError';
  readonly code = 'provider_quota_exhausted';
}

/**
 * The provider billed the call but its result cannot be used (an image URL that would not
 * download, fewer images than asked for, bytes that are not an image). Never retried by
 * calling again — that would pay twice — and `usage` lets the cost be recorded.
 */
export class PaidResultError extends RendermillError {
  override name = 'PaidResultError';
  readonly code = 'unusable_result';
  constructor(
    message: string,
    readonly usage?: ProviderUsage,
  ) {
    super(message);
  }
}

/**
 * The worker is shutting down and cut a wait short (a backoff, a wait for budget). Nothing was
 * paid in the aborted step: the item goes back to the queue and the job is handed back
 * without using up an attempt.
 */
export class ShutdownError extends RendermillError {
  override name = 'ShutdownError';
  readonly code = 'shutdown';
  override readonly retryable = true;
  constructor() {
    super('the worker is shutting down; the item goes back to the queue');
  }
}

/**
 * The provider account is paused — out of quota, its key refused, or told to wait longer than a
 * worker should hold a job — so the item goes back to the queue, using no attempt, until
 * `resumeAt`; its record says why. Nothing is called in the meantime.
 */
export class AccountPausedError extends RendermillError {
  override name = 'AccountPausedError';
  override readonly retryable = true;
  constructor(
    message: string,
    /** The reason the account was paused: rate_limited, provider_quota_exhausted, provider_auth. */
    readonly code: string,
    /** When the account is worth trying again (epoch ms). */
    readonly resumeAt: number,
  ) {
    super(message);
  }
}

/**
 * The item has paid for something it cannot finish yet (a queued prediction still running,
 * images S3 would not take): it stays `running` with what any worker needs to finish it, and
 * its job comes back at `recheckAt` without using an attempt — never to buy it again.
 */
export abstract class ComeBackLaterError extends RendermillError {
  override readonly retryable = true;
  constructor(
    message: string,
    /** When to look again (epoch ms). */
    readonly recheckAt: number,
  ) {
    super(message);
  }
}

/**
 * A queued prediction (Replicate, fal) was submitted and has not ended: its worker slot is
 * not held for it. The item keeps the money at stake and the handle, and its job comes back at
 * `recheckAt` to follow the same prediction — never to submit another.
 */
export class PredictionPendingError extends ComeBackLaterError {
  override name = 'PredictionPendingError';
  readonly code = 'prediction_pending';
  constructor(
    message: string,
    /** What any worker needs to follow it (src/providers/image-provider.ts). */
    readonly prediction: {
      id: string;
      urls: { status: string; result?: string | undefined; cancel?: string | undefined };
      submittedAt: number;
    },
    recheckAt: number,
    /** How many images the prediction renders (set by the render path, which knows the call). */
    readonly images?: number,
  ) {
    super(message, recheckAt);
  }
}

/**
 * Paid images that S3 would not take, even after the uploads' own retries, wait in the spool
 * (src/storage/image-spool.ts): the job comes back at `recheckAt` to upload them from there.
 */
export class ImagesSpooledError extends ComeBackLaterError {
  override name = 'ImagesSpooledError';
  readonly code = 'storage_unavailable';
}

/**
 * Paid images that can be neither stored nor kept for later (the spool is full, or its entry
 * expired before S3 came back): the item fails with their price counted as spent, never
 * bought again. `code`: spool_full or spool_expired.
 */
export class PaidImagesLostError extends RendermillError {
  override name = 'PaidImagesLostError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/**
 * A batch's provider batches are still gathering or running at the provider: its
 * provider-batch job has nothing to do until `recheckAt`, and gives its slot up meanwhile.
 */
export class ProviderBatchRunningError extends ComeBackLaterError {
  override name = 'ProviderBatchRunningError';
  readonly code = 'provider_batch_running';
}

/** The batch's budget cannot hold this item's maximum price. */
export class BudgetExceededError extends RendermillError {
  override name = 'BudgetExceededError';
  readonly code = 'budget_exceeded';
}

/**
 * The item's batch was cancelled before its call left: the call is not made, what the item
 * held is released and the item ends `cancelled`.
 */
export class BatchCancelledError extends RendermillError {
  override name = 'BatchCancelledError';
  readonly code = 'cancelled';
}

/** An edit/variation input that cannot be used (missing, wrong format, too large, not square). */
export class InputImageError extends RendermillError {
  override name = 'InputImageError';
  readonly code = 'invalid_input_image';
}

/**
 * The item's reservation was gone when its call was about to leave: another run of the same
 * job (a stalled job run again elsewhere) released it and owns the item now. The call is not
 * made — it would be money no cap holds — and this run steps aside without touching the item.
 */
export class ReservationLostError extends RendermillError {
  override name = 'ReservationLostError';
  readonly code = 'reservation_lost';
  constructor() {
    super('the reservation for this call was released by another run of the job; not calling');
  }
}

export function isRetryable(error: unknown): boolean {
  return error instanceof RendermillError ? error.retryable : true;
}
