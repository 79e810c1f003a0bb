// Coalescing: while an upstream query for a key is in flight, identical
// queries wait for it instead of sending their own (dnsmasq and Unbound do
// the same), so N clients asking one name cause one upstream query. This
// covers refreshes and prefetches too: a client that arrives while one runs
// joins it.
//
// A waiter that has a stale answer to fall back on is not kept waiting past
// the client response timer (RFC 8767 §5, stale.client_timeout_ms): one
// timer per flight, started by the first such waiter, answers every such
// waiter stale when it fires; the flight itself runs on and its answer is
// stored. Waiters that join after the timer fired get the stale answer at once.

import type { ForwardRequest } from '../forward/forwarder.js';
import type { Entry } from './entry.js';

export interface Waiter {
  readonly req: ForwardRequest;
  /** What this client may be answered from if the upstream is slow or fails. */
  readonly stale: Entry | undefined;
  readonly resolve: (reply: Buffer) => void;
  readonly reject: (err: unknown) => void;
}

export class Flight {
  waiters: Waiter[] = [];
  timer: NodeJS.Timeout | null = null;
  /** The client timer fired: stale-capable joiners are answered at once. */
  late = false;

  constructor(
    /** Cache key plus the client's transport and, over UDP, its EDNS UDP size (key.ts flightKey). */
    readonly id: string,
    readonly cacheKey: string,
    /** Where the question of the query sent upstream ends (its reply's too). */
    readonly questionEnd: number,
    /** The message of the client whose query went upstream. */
    readonly origin: Buffer,
  ) {}
}

export interface CoalescerOptions {
  /** Clients that may wait at once, across all flights; beyond it join() says no. */
  readonly maxWaiting: number;
  readonly clientTimeoutMs: number;
  /** Answers a waiter from its stale entry when the client timer fires; undefined if it no longer can. */
  readonly onClientTimeout: (w: Waiter) => Buffer | undefined;
}

export class Coalescer {
  private readonly flights = new Map<string, Flight>();
  private waitingNow = 0;

  constructor(private readonly opts: CoalescerOptions) {}

  get size(): number {
    return this.flights.size;
  }

  get waiting(): number {
    return this.waitingNow;
  }

  get(id: string): Flight | undefined {
    return this.flights.get(id);
  }

  begin(id: string, cacheKey: string, questionEnd: number, origin: Buffer): Flight {
    const f = new Flight(id, cacheKey, questionEnd, origin);
    this.flights.set(id, f);
    return f;
  }

  /** A promise of this client's reply, or null when too many clients wait already. */
  join(f: Flight, req: ForwardRequest, stale: Entry | undefined): Promise<Buffer> | null {
    if (this.waitingNow >= this.opts.maxWaiting) return null;
    return new Promise<Buffer>((resolve, reject) => {
      f.waiters.push({ req, stale, resolve, reject });
      this.waitingNow++;
      if (stale !== undefined && f.timer === null && !f.late) {
        f.timer = setTimeout(() => this.clientTimeout(f), this.opts.clientTimeoutMs);
      }
    });
  }

  /** The flight is over: no one joins it any more; each waiter gets `deliver`. */
  settle(f: Flight, deliver: (w: Waiter) => void): void {
    if (this.flights.get(f.id) === f) this.flights.delete(f.id);
    if (f.timer !== null) {
      clearTimeout(f.timer);
      f.timer = null;
    }
    const waiters = f.waiters;
    f.waiters = [];
    this.waitingNow -= waiters.length;
    for (const w of waiters) {
      try {
        deliver(w);
      } catch (err) {
        w.reject(err);
      }
    }
  }

  close(): void {
    for (const f of this.flights.values()) {
      if (f.timer !== null) clearTimeout(f.timer);
      f.timer = null;
    }
  }

  private clientTimeout(f: Flight): void {
    f.timer = null;
    f.late = true;
    const keep: Waiter[] = [];
    for (const w of f.waiters) {
      const reply = w.stale === undefined ? undefined : this.opts.onClientTimeout(w);
      if (reply === undefined) keep.push(w);
      else w.resolve(reply);
    }
    this.waitingNow -= f.waiters.length - keep.length;
    f.waiters = keep;
  }
}
