// The cache layer of the forward chain (EIP rewrite → cache → budget guard →
// upstream): answers from the store when it can, synchronously; otherwise
// asks the layer below once per key (flight.ts), stores what comes back
// (entry.ts), and falls back on a stale answer when that fails or is slow
// (stale.ts). Sitting above the budget guard, hits never spend the query
// budget, while every query it sends (misses, refreshes, prefetches) does.
//
// One of these is built per chain (a reload that changes upstream or cache
// settings builds a new one); the store under it, and its counters, are the
// server's and survive.

import { performance } from 'node:perf_hooks';
import type { CacheConfig } from '../config/types.js';
import { UpstreamError } from '../forward/errors.js';
import type { AnswerSource, Forwarder, ForwardRequest } from '../forward/forwarder.js';
import type { Logger } from '../log.js';
import { EDE, RCODE } from '../wire/codes.js';
import { FLAG, headerRcode } from '../wire/header.js';
import { rcodeReply, restoreClient, withEde } from '../wire/reply.js';
import { answerFrom, classify, Entry, relayFrom, relayTemplate, type Lifetimes, type RelayTemplate } from './entry.js';
import { Coalescer, type Flight, type Waiter } from './flight.js';
import { cacheKey, flightKey } from './key.js';
import { wantsPrefetch } from './prefetch.js';
import { canServeStale, inRecheckWait, isDead, markRefreshFailed, stalePolicy } from './stale.js';
import type { CacheStats } from './stats.js';
import { entryCost, type CacheStore } from './store.js';

export interface CacheOptions {
  /** Kept by the server across reloads. */
  readonly store: CacheStore;
  readonly config: CacheConfig;
  /**
   * Clients that may wait on in-flight upstream queries at once
   * (upstream.max_in_flight): past it a client is answered stale, or SERVFAIL.
   */
  readonly maxWaiting: number;
  /** The cache's clock in milliseconds (monotonic); tests count TTLs down with it. */
  readonly now?: () => number;
  readonly logger?: Logger;
}

/** How a finished upstream query answers the clients that waited for it. */
type Outcome =
  /** An answer held as an entry: fresh from upstream, or one the store already had. */
  | { readonly kind: 'answer'; readonly entry: Entry; readonly source: AnswerSource }
  /** The refresh failed and this stale entry answers. */
  | { readonly kind: 'stale'; readonly entry: Entry }
  /** Relayed, each waiter with its own OPT (not cacheable: TC, TSIG, TTL 0, ...). */
  | { readonly kind: 'reply'; readonly relay: Relay }
  /**
   * No answer (an upstream failure, a SERVFAIL/REFUSED reply, a local
   * refusal): stale if the waiter has one. `recheck`: the upstream said no,
   * so the failure recheck timer starts.
   */
  | { readonly kind: 'failed'; readonly relay: Relay | null; readonly err: unknown; readonly recheck: boolean };

/** An upstream reply to hand on, as it came (`reply`) and cut for other clients (`template`). */
interface Relay {
  readonly reply: Buffer;
  /** Null when its OPT could not be cut out: only the client whose query went upstream gets it then. */
  readonly template: RelayTemplate | null;
  /** The message of the client whose query went upstream. */
  readonly origin: Buffer;
}

export function createCache(next: Forwarder, opts: CacheOptions): Forwarder<CacheStats> {
  const { store, config } = opts;
  const counters = store.counters;
  const lifetimes: Lifetimes = { minTtl: config.minTtl, maxTtl: config.maxTtl, maxNegativeTtl: config.maxNegativeTtl };
  const stale = stalePolicy(config);
  const prefetchOn = config.prefetch;
  const failureTtl = config.failureTtl;
  const now = opts.now ?? (() => performance.now());
  const logger = opts.logger;
  const flights = new Coalescer({
    maxWaiting: opts.maxWaiting,
    clientTimeoutMs: stale.clientTimeoutMs,
    onClientTimeout: (w) => (canServeStale(w.stale, now(), stale) ? serveStale(w.stale, w.req) : undefined),
  });

  function serveStale(e: Entry, req: ForwardRequest): Buffer {
    counters.staleServed++;
    req.source = 'stale';
    const out = answerFrom(e, req.msg, req.query, stale.ttl, true);
    // RFC 8767 §6 / RFC 8914 §4.4, §4.20: an EDNS client is told the answer
    // is stale (BIND does the same; dig prints it), so whoever debugs a
    // failover sees why an old address came back.
    return withEde(out, req.query, headerRcode(out) === RCODE.NXDOMAIN ? EDE.STALE_NXDOMAIN_ANSWER : EDE.STALE_ANSWER);
  }

  function serveFresh(e: Entry, req: ForwardRequest, t: number): Buffer {
    if (e.wire === null) return rcodeReply(req.msg, req.query, RCODE.SERVFAIL);
    return answerFrom(e, req.msg, req.query, e.secondsLeft(t), false);
  }

  /**
   * A copy of a relayed reply made to answer this client (each caller may
   * patch its own), built like a cached answer: the upstream's OPT (which may
   * echo the first client's DNS COOKIE) never reaches another client.
   */
  function relay(r: Relay, req: ForwardRequest): Buffer {
    const q = req.query;
    const out = r.template === null ? null : relayFrom(r.template, req.msg, q);
    if (out !== null) return out;
    if (req.msg === r.origin) {
      const copy = Buffer.allocUnsafe(r.reply.length);
      r.reply.copy(copy);
      restoreClient(copy, req.msg, q);
      return copy;
    }
    return rcodeReply(req.msg, q, RCODE.SERVFAIL);
  }

  const relayOf = (f: Flight, reply: Buffer): Relay => ({ reply, template: relayTemplate(reply, f.questionEnd), origin: f.origin });

  function launch(id: string, key: string, req: ForwardRequest): Flight {
    const f = flights.begin(id, key, req.query.questionEnd, req.msg);
    // Its own request object: the client's `source` is set by this layer only.
    const upstreamReq: ForwardRequest = { msg: req.msg, query: req.query, viaTcp: req.viaTcp, source: 'upstream' };
    let result: Buffer | Promise<Buffer>;
    try {
      result = next.resolve(upstreamReq);
    } catch (err) {
      result = Promise.reject(err);
    }
    Promise.resolve(result)
      .then(
        (reply) => land(f, reply, null),
        (err: unknown) => land(f, null, err),
      )
      .catch((err: unknown) => {
        logger?.error({ err }, 'cache: settling an upstream answer failed');
        flights.settle(f, (w) => w.reject(err));
      });
    return f;
  }

  /** The upstream query of flight `f` finished: store what it brought, answer its waiters. */
  function land(f: Flight, reply: Buffer | null, err: unknown): void {
    const t = now();
    let outcome: Outcome;
    if (reply !== null) {
      const v = classify(reply, f.questionEnd, lifetimes);
      if (v.kind === 'positive' || v.kind === 'negative') {
        const e = new Entry(f.cacheKey, v.kind, v.bytes.toString('latin1'), v.ttlAt, v.ttl, t, entryCost(f.cacheKey, v.bytes.length, v.ttlAt.length));
        store.set(e);
        outcome = { kind: 'answer', entry: e, source: 'upstream' };
      } else if (v.kind === 'pass') {
        outcome = { kind: 'reply', relay: relayOf(f, reply) };
      } else {
        // SERVFAIL, REFUSED and the like: the upstream said no.
        outcome = failed(f, t, v.kind === 'failure', true, relayOf(f, reply), null);
      }
    } else {
      // Timeout and AllFailed are what the upstream did; OverBudget, Overload
      // and Closed are local conditions and say nothing about the name: a
      // stale answer goes out, but the name is asked again as soon as the
      // condition passes (a one-second budget spike must not hold every
      // name refreshed during it back for 30 s).
      const upstreamFailed = err instanceof UpstreamError && (err.code === 'Timeout' || err.code === 'AllFailed');
      outcome = failed(f, t, upstreamFailed, upstreamFailed, null, err);
    }
    flights.settle(f, (w) => deliver(w, outcome, t));
  }

  /**
   * No answer came back. An entry the store still has answers instead (fresh:
   * a failed prefetch; expired: serve-stale) and, when the upstream said no
   * (`recheck`), is not asked for again for 30 s; only when there is none is
   * an upstream failure itself cached.
   */
  function failed(f: Flight, t: number, cacheFailure: boolean, recheck: boolean, relay: Relay | null, err: unknown): Outcome {
    const current = store.peek(f.cacheKey);
    if (current !== undefined && current.kind !== 'failure' && !isDead(current, t, stale)) {
      if (recheck) markRefreshFailed(current, t);
      return t < current.expiresAt ? { kind: 'answer', entry: current, source: 'cache' } : { kind: 'stale', entry: current };
    }
    if (cacheFailure) {
      // RFC 9520 §3.2: remember the failure, so a dead upstream is not asked
      // once per client query.
      const e = new Entry(f.cacheKey, 'failure', null, [], failureTtl, t, entryCost(f.cacheKey, 0, 0));
      if (store.set(e)) counters.failuresCached++;
    }
    return { kind: 'failed', relay, err, recheck };
  }

  function deliver(w: Waiter, o: Outcome, t: number): void {
    switch (o.kind) {
      case 'answer':
        w.req.source = o.source;
        w.resolve(serveFresh(o.entry, w.req, t));
        return;
      case 'stale':
        w.resolve(serveStale(o.entry, w.req));
        return;
      case 'reply':
        w.resolve(relay(o.relay, w.req));
        return;
      case 'failed':
        // The store may have dropped the entry meanwhile; the waiter kept it.
        if (canServeStale(w.stale, t, stale)) {
          if (o.recheck) markRefreshFailed(w.stale, t);
          w.resolve(serveStale(w.stale, w.req));
        } else if (o.relay !== null) {
          w.resolve(relay(o.relay, w.req));
        } else {
          w.reject(o.err);
        }
    }
  }

  function prefetch(e: Entry, key: string, req: ForwardRequest): void {
    e.prefetched = true;
    const id = flightKey(key, req.query, req.viaTcp);
    if (flights.get(id) !== undefined) return;
    counters.prefetches++;
    launch(id, key, req);
  }

  function resolve(req: ForwardRequest): Buffer | Promise<Buffer> {
    const q = req.query;
    // RFC 7871 §7.3: an answer to a Client Subnet query may be tailored to
    // that subnet; it is neither served from nor stored in a shared cache.
    if (q.edns !== null && q.edns.clientSubnet) {
      counters.bypassed++;
      return next.resolve(req);
    }
    // RD=0 goes around the cache too: the upstream may answer it differently
    // (REFUSED, a referral, SERVFAIL), which must not reach RD=1 clients
    // through a shared flight or a cached failure; and a cache that answered
    // it would tell anyone which names others asked (cache snooping,
    // RFC 4697; Unbound's allow_snoop).
    if ((q.flags & FLAG.RD) === 0) {
      counters.bypassed++;
      return next.resolve(req);
    }
    const key = cacheKey(q);
    const t = now();
    let e = store.get(key);
    if (e !== undefined) {
      if (t < e.expiresAt) {
        counters.hits++;
        if (prefetchOn && wantsPrefetch(e, t)) prefetch(e, key, req);
        req.source = 'cache';
        return serveFresh(e, req, t);
      }
      if (isDead(e, t, stale)) {
        store.delete(e);
        counters.expired++;
        e = undefined;
      }
    }
    counters.misses++;
    const fallback = canServeStale(e, t, stale) ? e : undefined;
    if (fallback !== undefined && inRecheckWait(fallback, t)) return serveStale(fallback, req);

    const id = flightKey(key, q, req.viaTcp);
    let f = flights.get(id);
    if (f === undefined) {
      if (fallback !== undefined) counters.refreshes++;
      f = launch(id, key, req);
    } else {
      counters.coalesced++;
      if (fallback !== undefined && f.late) return serveStale(fallback, req);
    }
    const waiting = flights.join(f, req, fallback);
    if (waiting !== null) return waiting;
    if (fallback !== undefined) return serveStale(fallback, req);
    return Promise.reject(new UpstreamError('Overload', `${opts.maxWaiting} clients already waiting on upstream queries`));
  }

  return {
    resolve,
    stats(): CacheStats {
      const { maxEntries, maxBytes } = store.limits;
      return {
        entries: store.size,
        bytes: store.bytes,
        maxEntries,
        maxBytes,
        hits: counters.hits,
        misses: counters.misses,
        staleServed: counters.staleServed,
        prefetches: counters.prefetches,
        refreshes: counters.refreshes,
        coalesced: counters.coalesced,
        evictions: counters.evictions,
        insertions: counters.insertions,
        failuresCached: counters.failuresCached,
        expired: counters.expired,
        bypassed: counters.bypassed,
        inFlight: flights.size,
        waiting: flights.waiting,
      };
    },
    async close() {
      flights.close();
      await next.close();
    },
  };
}
