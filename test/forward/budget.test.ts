import { describe, expect, it } from 'vitest';
import { Budget, createBudgetGuard } from '../../src/forward/budget.js';
import { UpstreamError } from '../../src/forward/errors.js';
import type { Forwarder } from '../../src/forward/forwarder.js';
import { buildQuery, request } from './query.js';

/** A clock the test moves by hand. */
function clock(start = 1000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

/** Any 1 s window over the recorded times holds at most `cap` of them. */
function maxInAnyWindow(times: number[]): number {
  let best = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! >= 1000) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

describe('Budget', () => {
  it('lets max_qps through per second and refuses the rest, with no burst above the cap in any window', () => {
    const c = clock();
    const b = new Budget(10, undefined, c.now);
    const accepted: number[] = [];
    // 5 queries every 100 ms for 3 s: 50/s offered against a cap of 10/s.
    for (let tick = 0; tick < 30; tick++) {
      for (let i = 0; i < 5; i++) if (b.take()) accepted.push(c.now());
      c.advance(100);
    }
    expect(maxInAnyWindow(accepted)).toBe(10);
    expect(accepted.length).toBe(30);
    expect(b.stats()).toMatchObject({ maxQps: 10, sent: 30, rejected: 120, exhausted: true });
  });

  it('frees up as the window slides and says so once', () => {
    const c = clock();
    const lines: string[] = [];
    const logger = { warn: (_o: unknown, m: string) => lines.push(`warn ${m}`), info: (_o: unknown, m: string) => lines.push(`info ${m}`) };
    const b = new Budget(3, logger as never, c.now);
    for (let i = 0; i < 3; i++) expect(b.take()).toBe(true);
    for (let i = 0; i < 5; i++) expect(b.take()).toBe(false);
    expect(b.available()).toBe(false);
    c.advance(999);
    expect(b.take()).toBe(false);
    c.advance(1);
    expect(b.available()).toBe(true);
    expect(b.take()).toBe(true);
    expect(lines).toEqual([
      'warn upstream query budget exhausted: answering stale or SERVFAIL until it frees up',
      'info upstream query budget available again',
    ]);
    expect(b.stats().currentQps).toBe(1);
  });

  it('keeps the recent window when a reload changes the cap', () => {
    const c = clock();
    const b = new Budget(5, undefined, c.now);
    for (let i = 0; i < 5; i++) b.take();
    b.resize(8);
    expect(b.stats().currentQps).toBe(5);
    for (let i = 0; i < 3; i++) expect(b.take()).toBe(true);
    expect(b.take()).toBe(false);
    b.resize(2);
    expect(b.take()).toBe(false);
    c.advance(1000);
    expect(b.take()).toBe(true);
  });
});

describe('budget guard', () => {
  it('refuses at once with OverBudget when nothing can be sent, without asking the layer below', async () => {
    const c = clock();
    const b = new Budget(1, undefined, c.now);
    let asked = 0;
    const below: Forwarder = {
      resolve: () => {
        asked++;
        b.take();
        return Promise.resolve(Buffer.alloc(12));
      },
      stats: () => ({}),
      close: async () => undefined,
    };
    const guard = createBudgetGuard(b, below);
    await guard.resolve(request(buildQuery('a.example'), false));
    const err: unknown = await Promise.resolve(guard.resolve(request(buildQuery('b.example'), false))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).code).toBe('OverBudget');
    expect(asked).toBe(1);
    expect(guard.stats()).toMatchObject({ sent: 1, rejected: 1, exhausted: true });
  });
});
