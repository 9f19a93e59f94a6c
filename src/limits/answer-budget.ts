/**
 * The answers' bytes a worker process may hold at once between reading a provider's answer
 * and the end of storing its images: 24 MiB, 8 answers of one 1024x1024 image in base64
 * (~2.9 MB each, ~2.2 MB decoded) — what a worker at the default concurrency (8) holds at
 * most anyway, so the budget binds only where more answers land together than that. Requests
 * in flight cost little while they wait for the provider; what costs memory is their answers
 * once read — the body, then the decoded images until S3 has them. Without a bound, a worker
 * with 1,000 requests in flight reads answers as fast as it can and holds as many decoded
 * images as S3 is behind. An answer beyond the budget waits with its socket unread, so TCP
 * keeps most of its bytes out of the process.
 */
export const ANSWER_BUDGET_BYTES = 24 * 1024 * 1024;

/**
 * What an answer is taken to weigh when its length is not known before it is read (no
 * `Content-Length`): one 1024x1024 image in base64. Corrected to the real size once read.
 */
export const UNKNOWN_ANSWER_BYTES = 3 * 1024 * 1024;

/**
 * The longest a paid answer waits for room before it is read all the same, over the budget.
 * Room comes back as fast as S3 takes the images before it; when S3 is slow, an answer left
 * unread in its socket for minutes could be cut off by the provider or a load balancer
 * between (60 s of no traffic is a common idle timeout) — and an answer lost is an image
 * bought again. Past this wait memory gives way, not money. (10 s was tried: 1,000 answers
 * landing together take ~15 s to read at s3rver's pace, and the worker's peak went from 411 to
 * 570 MB as the last ones were let in at once.)
 */
export const ANSWER_MAX_WAIT_MS = 30_000;

/**
 * A process-wide budget of answer bytes. Each render attempt gets its own `AnswerHold`, which
 * takes room before the first answer is read and gives it all back when the attempt is done
 * with the images (stored, spooled, failed or cancelled).
 */
export class AnswerBudget {
  private held = 0;
  private holders = 0;
  private peakHolders = 0;
  private readonly waiting: Array<{ bytes: number; go: () => void }> = [];
  /** Holders let in past a full budget because they had waited ANSWER_MAX_WAIT_MS. */
  private overdrawn = 0;

  constructor(
    readonly maxBytes: number = ANSWER_BUDGET_BYTES,
    private readonly maxWaitMs: number = ANSWER_MAX_WAIT_MS,
  ) {
    if (!(maxBytes > 0)) throw new Error(`an answer budget needs room: ${maxBytes} bytes`);
  }

  /** A hold for one render attempt: holds nothing until it takes. */
  hold(): AnswerHold {
    return new AnswerHold(this);
  }

  /**
   * Bytes held now, holds holding them, holds waiting for room, the most that held at once,
   * and how many were let in over the budget after waiting too long.
   */
  load(): {
    bytes: number;
    holders: number;
    waiting: number;
    peakHolders: number;
    overdrawn: number;
  } {
    return {
      bytes: this.held,
      holders: this.holders,
      waiting: this.waiting.length,
      peakHolders: this.peakHolders,
      overdrawn: this.overdrawn,
    };
  }

  /**
   * Room for `bytes` for a new holder, once the budget has it — or at once when nothing is
   * held, so that an answer bigger than the whole budget is still read, alone. First come,
   * first served: a small answer does not overtake a big one that waits.
   */
  take(bytes: number): Promise<void> {
    if (this.waiting.length === 0 && this.fits(bytes)) {
      this.admit(bytes);
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const waiter = {
        bytes,
        go: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        // Waited too long: read it anyway (ANSWER_MAX_WAIT_MS says why).
        const at = this.waiting.indexOf(waiter);
        if (at < 0) return;
        this.waiting.splice(at, 1);
        this.overdrawn++;
        this.admit(bytes);
        resolve();
      }, this.maxWaitMs);
      timer.unref();
      this.waiting.push(waiter);
    });
  }

  /**
   * More bytes for a holder that already holds: never waits (see AnswerHold.take). Fewer (a
   * guess corrected down) may let waiters in.
   */
  add(bytes: number): void {
    this.held += bytes;
    if (bytes < 0) this.letIn();
  }

  /** Gives back all that a holder held. */
  giveBack(bytes: number): void {
    this.held -= bytes;
    this.holders--;
    this.letIn();
  }

  /** Lets in the waiters that now fit, in order. */
  private letIn(): void {
    for (let next = this.waiting[0]; next && this.fits(next.bytes); next = this.waiting[0]) {
      this.waiting.shift();
      this.admit(next.bytes);
      next.go();
    }
  }

  private fits(bytes: number): boolean {
    return this.holders === 0 || this.held + bytes <= this.maxBytes;
  }

  private admit(bytes: number): void {
    this.held += bytes;
    this.holders++;
    this.peakHolders = Math.max(this.peakHolders, this.holders);
  }
}

/**
 * One render attempt's share of the budget. `take` before reading an answer (it waits for
 * room the first time); `release` when the attempt is done with the images, on every path —
 * it is idempotent, so a `finally` can always call it. Until then the room stays taken: a
 * hold that is never released shrinks the budget for good, and enough of them wedge every
 * read of the process.
 */
export class AnswerHold {
  private bytes = 0;
  private holding = false;
  private released = false;

  constructor(private readonly budget: AnswerBudget) {}

  /**
   * Takes room for `bytes` of answer. The first take waits for room; later ones (the next
   * call of an item split over several) add to the hold without
   * waiting: a hold that waited for more while holding could wait for holds that wait in
   * turn for it, and the process would read nothing more.
   */
  async take(bytes: number): Promise<void> {
    // An attempt that is over reads nothing it will keep; it takes no room.
    if (this.released) return;
    if (this.holding) {
      this.budget.add(bytes);
      this.bytes += bytes;
      return;
    }
    await this.budget.take(bytes);
    if (this.released) {
      // Released while it waited (its attempt is over): the room goes straight back.
      this.budget.giveBack(bytes);
      return;
    }
    this.holding = true;
    this.bytes = bytes;
  }

  /** Says what an answer taken at a guessed size really weighed, without waiting. */
  correct(guessed: number, actual: number): void {
    if (!this.holding || this.released) return;
    this.budget.add(actual - guessed);
    this.bytes += actual - guessed;
  }

  /** Gives the room back. Safe to call on every path, more than once, and before any take. */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.holding) this.budget.giveBack(this.bytes);
    this.holding = false;
    this.bytes = 0;
  }
}
