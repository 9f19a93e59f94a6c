import { describe, expect, it } from 'vitest';
import { AnswerBudget } from '../../src/limits/answer-budget.js';

/** Whether `promise` has settled after the microtasks queued now have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('AnswerBudget', () => {
  it('lets holds take room up to the budget, and the next only when one releases', async () => {
    const budget = new AnswerBudget(10);
    const [a, b, c] = [budget.hold(), budget.hold(), budget.hold()];
    await a.take(4);
    await b.take(4);
    const third = c.take(4);
    expect(await settled(third)).toBe(false);
    expect(budget.load()).toMatchObject({ bytes: 8, holders: 2, waiting: 1 });
    a.release();
    expect(await settled(third)).toBe(true);
    expect(budget.load()).toMatchObject({ bytes: 8, holders: 2, waiting: 0, peakHolders: 2 });
  });

  it('lets a waiter in over the budget once it has waited too long: a paid answer is not left unread', async () => {
    const budget = new AnswerBudget(10, 30);
    await budget.hold().take(8);
    const late = budget.hold().take(8);
    expect(await settled(late)).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(await settled(late)).toBe(true);
    expect(budget.load()).toMatchObject({ bytes: 16, holders: 2, waiting: 0, overdrawn: 1 });
  });

  it('lets waiters in when a guessed size is corrected down', async () => {
    const budget = new AnswerBudget(10);
    const guessed = budget.hold();
    await guessed.take(9);
    const next = budget.hold().take(4);
    expect(await settled(next)).toBe(false);
    guessed.correct(9, 5);
    expect(await settled(next)).toBe(true);
  });

  it('serves waiters in order: a small answer does not overtake a big one', async () => {
    const budget = new AnswerBudget(10);
    const first = budget.hold();
    await first.take(8);
    const big = budget.hold().take(9);
    const small = budget.hold().take(1);
    expect(await settled(big)).toBe(false);
    expect(await settled(small)).toBe(false);
    first.release();
    expect(await settled(big)).toBe(true);
    expect(await settled(small)).toBe(true);
  });

  it('reads an answer bigger than the whole budget, alone', async () => {
    const budget = new AnswerBudget(10);
    const huge = budget.hold();
    await huge.take(50);
    const next = budget.hold().take(1);
    expect(await settled(next)).toBe(false);
    huge.release();
    expect(await settled(next)).toBe(true);
  });

  it('adds a hold’s later takes without waiting, so holders waiting for more cannot wedge', async () => {
    const budget = new AnswerBudget(10);
    const [a, b] = [budget.hold(), budget.hold()];
    await a.take(5);
    await b.take(5);
    // Both hold and both want more: if either waited, neither would ever release.
    expect(await settled(a.take(5))).toBe(true);
    expect(await settled(b.take(5))).toBe(true);
    expect(budget.load()).toMatchObject({ bytes: 20, holders: 2 });
    a.release();
    b.release();
    expect(budget.load()).toMatchObject({ bytes: 0, holders: 0 });
  });

  it('gives back exactly what was held: release is idempotent, and nothing before a take', async () => {
    const budget = new AnswerBudget(10);
    const never = budget.hold();
    never.release();
    never.release();
    expect(budget.load()).toMatchObject({ bytes: 0, holders: 0 });
    const a = budget.hold();
    await a.take(3);
    a.correct(3, 7);
    expect(budget.load().bytes).toBe(7);
    a.release();
    a.release();
    expect(budget.load()).toMatchObject({ bytes: 0, holders: 0 });
    // A released hold takes nothing more.
    await a.take(4);
    expect(budget.load()).toMatchObject({ bytes: 0, holders: 0 });
  });

  it('gives the room straight back when a hold is released while it waits', async () => {
    const budget = new AnswerBudget(10);
    const first = budget.hold();
    await first.take(10);
    const late = budget.hold();
    const waiting = late.take(4);
    late.release();
    first.release();
    await waiting;
    expect(budget.load()).toMatchObject({ bytes: 0, holders: 0, waiting: 0 });
  });
});
