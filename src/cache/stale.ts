// Serve-stale (RFC 8767), as Unbound's serve-expired does it: an expired
// answer is kept for stale.max_age and sent, with TTL stale.ttl, only when a
// fresh one cannot be had in time: the refresh failed (every server silent or
// failing, SERVFAIL, REFUSED, the query budget spent) or no answer came within
// the client response timer (stale.client_timeout_ms). A fresh answer,
// NXDOMAIN included, always replaces it (§5: stale data is a fallback, never a
// preference).

import type { CacheConfig } from '../config/types.js';
import type { Entry } from './entry.js';

/**
 * RFC 8767 §5 "failure recheck timer": after a refresh fails, the name is not
 * asked again for this long; stale answers go out meanwhile. A dead upstream
 * then costs one query per name per 30 s, not one per client query.
 */
export const FAILURE_RECHECK_MS = 30_000;

export interface StalePolicy {
  readonly enabled: boolean;
  readonly maxAgeMs: number;
  /** TTL of every record in a stale answer (RFC 8767 §4: 30 s recommended, never 0). */
  readonly ttl: number;
  readonly clientTimeoutMs: number;
}

export function stalePolicy(c: CacheConfig): StalePolicy {
  return {
    enabled: c.stale.enabled,
    maxAgeMs: c.stale.maxAge * 1000,
    ttl: Math.max(1, c.stale.ttl),
    clientTimeoutMs: c.stale.clientTimeoutMs,
  };
}

/** Past this, an entry is of no use at all and is dropped when found. */
export function isDead(e: Entry, now: number, p: StalePolicy): boolean {
  // A cached failure is only ever a failure: nothing to serve once it expires.
  const grace = p.enabled && e.kind !== 'failure' ? p.maxAgeMs : 0;
  return now >= e.expiresAt + grace;
}

/** The entry can answer as stale now (expired, within max_age, an answer). */
export function canServeStale(e: Entry | undefined, now: number, p: StalePolicy): e is Entry {
  return e !== undefined && e.kind !== 'failure' && p.enabled && now >= e.expiresAt && now < e.expiresAt + p.maxAgeMs;
}

/** A refresh failed recently: answer stale without asking again (§5). */
export function inRecheckWait(e: Entry, now: number): boolean {
  return now < e.retryAfter;
}

export function markRefreshFailed(e: Entry, now: number): void {
  e.retryAfter = now + FAILURE_RECHECK_MS;
}
