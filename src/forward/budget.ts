// The VPC resolver drops packets past 1024 per second per network interface,
// silently (throttled queries do not even reach its query log), and the quota
// cannot be raised. Every query eipdns writes upstream (first tries,
// retries, prefetches, refreshes, TCP retries) is charged here, against one
// budget for the whole upstream set: 169.254.169.253 and the VPC+2 address
// share the ENI's single quota. Past the cap a query is refused at once (the
// cache answers stale or SERVFAIL); it is never queued and never silent.
//
// The limit is a sliding window, not a token bucket: a bucket of N tokens
// refilled at N/s lets 2N through in some one-second window, and the point is
// that NO window exceeds the cap.

import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.js';
import { UpstreamError } from './errors.js';
import type { Forwarder, ForwardRequest } from './forwarder.js';

const WINDOW_MS = 1000;

export interface BudgetStats {
  /** The cap, queries per second (upstream.max_qps). */
  readonly maxQps: number;
  /** Queries written upstream in the last second. */
  readonly currentQps: number;
  /** Queries written upstream since start. */
  readonly sent: number;
  /** Queries refused because the window was full. */
  readonly rejected: number;
  /** True while the last charge was refused. */
  readonly exhausted: boolean;
}

export class Budget {
  /** Send times (performance.now()) of the last maxQps queries, a ring. */
  private times: Float64Array;
  private head = 0;
  private filled = 0;
  private sent = 0;
  private rejected = 0;
  private rejectedSinceExhausted = 0;
  private exhausted = false;

  constructor(
    private maxQps: number,
    private readonly logger?: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.times = new Float64Array(maxQps);
  }

  /** A reload may change the cap; the window's history is kept where it fits. */
  resize(maxQps: number): void {
    if (maxQps === this.maxQps) return;
    const recent = this.recent();
    this.maxQps = maxQps;
    this.times = new Float64Array(maxQps);
    this.head = 0;
    this.filled = 0;
    for (const t of recent.slice(-maxQps)) this.record(t);
  }

  /** True when a query could be sent now (nothing is charged). */
  available(): boolean {
    return this.filled < this.maxQps || this.now() - this.times[this.head]! >= WINDOW_MS;
  }

  /** Charges one query; false (and nothing charged) when the window is full. */
  take(): boolean {
    const now = this.now();
    if (this.filled === this.maxQps && now - this.times[this.head]! < WINDOW_MS) {
      this.refuse();
      return false;
    }
    if (this.exhausted) {
      this.exhausted = false;
      this.logger?.info({ refused: this.rejectedSinceExhausted }, 'upstream query budget available again');
      this.rejectedSinceExhausted = 0;
    }
    this.record(now);
    this.sent++;
    return true;
  }

  /** Counts a refusal (take()'s, or the guard's when available() said no); logs the state change once. */
  refuse(): void {
    this.rejected++;
    this.rejectedSinceExhausted++;
    if (!this.exhausted) {
      this.exhausted = true;
      this.logger?.warn({ maxQps: this.maxQps }, 'upstream query budget exhausted: answering stale or SERVFAIL until it frees up');
    }
  }

  stats(): BudgetStats {
    const now = this.now();
    let currentQps = 0;
    for (const t of this.recent()) if (now - t < WINDOW_MS) currentQps++;
    return { maxQps: this.maxQps, currentQps, sent: this.sent, rejected: this.rejected, exhausted: this.exhausted };
  }

  private record(t: number): void {
    if (this.filled < this.maxQps) {
      this.times[(this.head + this.filled) % this.maxQps] = t;
      this.filled++;
    } else {
      this.times[this.head] = t;
      this.head = (this.head + 1) % this.maxQps;
    }
  }

  /** Recorded send times, oldest first. */
  private recent(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.filled; i++) out.push(this.times[(this.head + i) % this.maxQps]!);
    return out;
  }
}

/**
 * The chain's budget layer: sits under the cache (hits never spend the
 * budget) and above the upstream, refusing at once when nothing can be sent.
 * The upstream charges each query it writes through `budget.take()`.
 *
 * Why both check: the guard looks (available(), nothing charged) once per
 * request, so a query that cannot be sent is refused before the upstream
 * takes an in-flight slot or a socket; the upstream charges (take()) once
 * per packet, because each retry to the next server, and each TCP retry
 * after TC, is another packet against the VPC resolver's quota. A refusal is
 * counted once either way: here (refuse(), and the upstream is not called),
 * or by take() when a later packet of an admitted query is refused.
 */
export function createBudgetGuard(budget: Budget, next: Forwarder): Forwarder<BudgetStats> {
  return {
    resolve(req: ForwardRequest) {
      if (!budget.available()) {
        budget.refuse();
        return Promise.reject(new UpstreamError('OverBudget', 'upstream query budget (max_qps) exhausted'));
      }
      return next.resolve(req);
    },
    stats: () => budget.stats(),
    close: () => next.close(),
  };
}
