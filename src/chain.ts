// The forward chain, assembled in one place, beside the server that owns it:
//   EIP rewrite → cache → budget guard → upstream.
// It lives above the rooms it joins (src/forward, src/cache) so neither
// imports the other's assembly: the cache depends on the Forwarder interface
// only, and the forward room knows nothing of the cache.
// Layers are cheap to rebuild on a reload; what must survive one (the cache's
// entries, the budget's window) lives in objects the server keeps and hands
// to each new chain (and resize after a reload commits).

import { createCache } from './cache/cache.js';
import type { CacheStats } from './cache/stats.js';
import type { CacheStore } from './cache/store.js';
import type { Config } from './config/types.js';
import type { Logger } from './log.js';
import { createBudgetGuard, type Budget, type BudgetStats } from './forward/budget.js';
import type { Forwarder } from './forward/forwarder.js';
import { createEipRewrite, type RewriteStats, type RewriteView } from './forward/rewrite.js';
import { createUpstream, type Upstream } from './forward/upstream.js';

export interface ForwardChain {
  /** The top of the chain: what the pipeline calls. */
  readonly forwarder: Forwarder;
  readonly upstream: Upstream;
  readonly budget: Forwarder<BudgetStats>;
  /** Absent when cache.enabled is false. */
  readonly cache?: Forwarder<CacheStats>;
  /** Absent when upstream.rewrite_elastic_ips is off. */
  readonly rewrite?: Forwarder<RewriteStats>;
}

export interface ChainState {
  readonly budget: Budget;
  /** The cache's entries and counters (resized, or cleared when disabled, on reload). */
  readonly cache: CacheStore;
  /** The cache's clock (ms); tests inject one to count TTLs down. */
  readonly cacheNow?: () => number;
  /** What the rewrite layer reads per reply: the current snapshot's EIP map. */
  readonly rewriteView: () => RewriteView;
  /** Upstream latency sinks per server (metrics); see UpstreamOptions.latency. */
  readonly upstreamLatency?: (server: string) => ((seconds: number) => void) | undefined;
}

export function buildForwardChain(config: Config, state: ChainState, logger: Logger): ForwardChain {
  const { budget } = state;
  const upstream = createUpstream({
    servers: config.upstream.servers,
    timeoutMs: config.upstream.timeoutMs,
    maxInFlight: config.upstream.maxInFlight,
    maySend: () => budget.take(),
    logger,
    ...(state.upstreamLatency !== undefined ? { latency: state.upstreamLatency } : {}),
  });
  const guard = createBudgetGuard(budget, upstream);
  const cache = config.cache.enabled
    ? createCache(guard, {
        store: state.cache,
        config: config.cache,
        maxWaiting: config.upstream.maxInFlight,
        now: state.cacheNow,
        logger: logger.child({ component: 'cache' }),
      })
    : undefined;
  const below = cache ?? guard;
  if (!config.upstream.rewriteElasticIps) return { forwarder: below, upstream, budget: guard, cache };
  const rewrite = createEipRewrite(below, state.rewriteView, logger.child({ component: 'rewrite' }));
  return { forwarder: rewrite, upstream, budget: guard, cache, rewrite };
}
