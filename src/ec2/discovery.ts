// Discovery runs beside the DNS pipeline: it polls EC2 on its own timer and
// swaps in immutable snapshots. The query path only ever calls current(), so
// a slow, throttled or unreachable EC2 API degrades freshness, never latency.
//
// Invariants:
// - one poll in flight at most; every poll settles by its deadline;
// - only a complete poll (every kind succeeded) replaces answers, so a failed
//   or partial poll never removes or changes a name;
// - a snapshot is published only when something a query can see changes
//   (addresses, stale, expired): each publish re-encodes every answer and
//   moves the zone's SOA serial, so an unchanged poll must not;
// - after a failed poll the snapshot is stale (short TTLs); past max_stale
//   without a success it is expired (SERVFAIL).

import { performance } from 'node:perf_hooks';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { Config, RecordConfig, RecordSource } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Snapshot, SnapshotSource } from '../zone/snapshot.js';
import { describeError, type DescribedError } from './describe-error.js';
import type { AddressOrigin } from './match.js';
import {
  createSourcePlan,
  staticAnswers,
  type Backend,
  type CallOutcome,
  type DiscoveredKind,
  type Ec2Calls,
  type PollResult,
  type SourcePlan,
} from './sources.js';

/** starting: no poll has finished yet; ok: the last poll succeeded; degraded: it failed (last answers kept); expired: past max_stale. */
export type DiscoveryState = 'starting' | 'ok' | 'degraded' | 'expired';
export const DISCOVERY_STATES: readonly DiscoveryState[] = ['starting', 'ok', 'degraded', 'expired'];
export const DISCOVERED_KINDS: readonly DiscoveredKind[] = ['elastic_ip', 'instances', 'network_interface'];
export const CALL_OUTCOMES: readonly CallOutcome[] = ['ok', 'error', 'cancelled'];

/** The last move of a record: when, and from which addresses (and their holders) to which. */
export interface RecordChange {
  /** Epoch ms (discovery's clock) of the poll that saw it. */
  readonly at: number;
  readonly from: readonly AddressOrigin[];
  readonly to: readonly AddressOrigin[];
}

interface RecordHistory {
  origins: readonly AddressOrigin[];
  /** When the current addresses were first seen. */
  since: number;
  lastChange?: RecordChange;
}

/** More distinct error codes than this are counted under "Other" (a label's values must stay few). */
const MAX_ERROR_CODES = 32;

/**
 * Counters and per-record history that outlive one Discovery: a reload that
 * changes zones or ec2 settings builds a new discovery, and "when did
 * db.internal last move" must not be forgotten on SIGHUP. The server owns
 * one and hands it to every discovery it creates; metrics read it.
 */
export class DiscoveryStats {
  /** Calls by kind and how they ended (one per kind per poll, pages included). */
  readonly calls: Record<DiscoveredKind, Record<CallOutcome, number>> = {
    elastic_ip: { ok: 0, error: 0, cancelled: 0 },
    instances: { ok: 0, error: 0, cancelled: 0 },
    network_interface: { ok: 0, error: 0, cancelled: 0 },
  };
  /** Whole polls. */
  pollsOk = 0;
  pollsFailed = 0;
  /** Failed polls by error code (AWS's spelling: RequestLimitExceeded, or PollTimeout, ECONNRESET, …). */
  readonly errors = new Map<string, number>();
  /** Records whose addresses changed (first data for a name is not a change). */
  recordsChanged = 0;
  /** Filled by the metrics registry: each poll's duration, seconds. */
  observePollSeconds: ((seconds: number) => void) | undefined;
  /** fqdn → history. */
  readonly records = new Map<string, RecordHistory>();

  countError(code: string): void {
    const key = this.errors.has(code) || this.errors.size < MAX_ERROR_CODES ? code : 'Other';
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
  }
}

/** One configured record as /status shows it. */
export interface RecordView {
  readonly name: string;
  readonly kind: RecordSource['kind'];
  /** The selector in words: "tag Role=db", "allocation_id eipalloc-…", "10.0.9.9". */
  readonly selector: string;
  /** What a query gets now; null before the first data for it. */
  readonly addresses: readonly string[] | null;
  /** Where each address comes from (empty for static records, and before the first poll that saw them). */
  readonly origins: readonly AddressOrigin[];
  /** Epoch ms since when the current addresses are answered. */
  readonly since?: number;
  readonly lastChange?: RecordChange;
}

/** A read-only view of discovery, for /status and the metrics registry. */
export interface DiscoveryView {
  readonly state: DiscoveryState;
  /** Where data comes from, and which Describe calls each poll makes. */
  readonly backend: Backend['kind'];
  readonly kinds: readonly DiscoveredKind[];
  readonly pollIntervalMs: number;
  /** Epoch ms of the last successful poll (also an unchanged one). */
  readonly lastSuccessAt?: number;
  /** now - lastSuccessAt (ms), when there was one. */
  readonly ageMs?: number;
  readonly consecutiveFailures: number;
  readonly lastError?: DescribedError;
  readonly lastErrorAt?: number;
  readonly snapshot: { readonly generation: number; readonly fetchedAt: number; readonly stale: boolean; readonly expired: boolean };
  readonly records: readonly RecordView[];
  readonly stats: DiscoveryStats;
}

export interface Discovery extends SnapshotSource {
  view(): DiscoveryView;
  /** Starts polling; the first poll begins at once and is not awaited. */
  start(): void;
  /** Stops the timer, aborts a poll in flight and waits for it to settle. */
  stop(): Promise<void>;
  /**
   * Runs one poll now (after the one in flight, if any, so its result reflects
   * EC2 as of this call). Never rejects: failures land in the health state.
   */
  pollNow(): Promise<void>;
  /**
   * For /ready, one line per zone with discovered names that lack data (until
   * the first successful poll that covers them), like TransferRoom.waiting().
   */
  waiting(): string[];
}

export interface DiscoveryOptions {
  /**
   * The previous discovery's snapshot on a config reload: answers for records
   * whose name and source are unchanged are served until the first poll. A
   * snapshot from another discovery is checked record by record; one built
   * elsewhere is trusted for every non-static name the config still has.
   */
  readonly seed?: Snapshot;
  /** Use this client instead of creating one from config.ec2 (not destroyed by stop()). */
  readonly client?: EC2Client;
  /** Clock for fetchedAt and staleness (epoch ms). */
  readonly now?: () => number;
  /** Uniform [0, 1) for timer jitter. */
  readonly random?: () => number;
  /** Counters and record history to continue (the previous discovery's, on a reload). */
  readonly stats?: DiscoveryStats;
}

export class PollTimeoutError extends Error {
  readonly code = 'PollTimeout';
  constructor(ms: number) {
    super(`EC2 poll did not finish within ${ms} ms`);
    this.name = 'PollTimeoutError';
  }
}

/** Upper bound of the failure backoff: a recovered API is noticed within a minute. */
const MAX_BACKOFF_MS = 60_000;
const INTERVAL_JITTER = 0.1;


interface Provenance {
  /** fqdn → sourceKey of the config that produced the snapshot. */
  readonly keys: ReadonlyMap<string, string>;
  /**
   * When the producing discovery last confirmed its data. Unchanged polls do
   * not republish, so a snapshot's fetchedAt can be far older than that.
   */
  readonly confirmedAt: () => number | undefined;
}

// For snapshots a discovery built, so a seeded discovery can tell "same name,
// same source" from "same name, new source" and how fresh the data really is.
const provenance = new WeakMap<Snapshot, Provenance>();

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Equal for sources that select the same thing, whatever the key order in the YAML. */
export function sourceKey(source: RecordSource): string {
  return canonical(source);
}

function sameMap(a: ReadonlyMap<string, string> | undefined, b: ReadonlyMap<string, string>): boolean {
  if (a === undefined || a.size !== b.size) return false;
  for (const [k, v] of b) if (a.get(k) !== v) return false;
  return true;
}

function sameAddresses(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  return a !== undefined && b !== undefined && a.length === b.length && a.every((ip, i) => ip === b[i]);
}

function carryOver(
  seed: Snapshot | undefined,
  records: readonly RecordConfig[],
  keys: ReadonlyMap<string, string>,
): Map<string, readonly string[]> {
  const carried = new Map<string, readonly string[]>();
  if (seed === undefined) return carried;
  const seedKeys = provenance.get(seed)?.keys;
  for (const r of records) {
    if (r.source.kind === 'static') continue;
    const previous = seed.records.get(r.fqdn);
    if (previous === undefined) continue;
    if (seedKeys !== undefined && seedKeys.get(r.fqdn) !== keys.get(r.fqdn)) continue;
    carried.set(r.fqdn, previous);
  }
  return carried;
}

export function createDiscovery(config: Config, logger: Logger, options: DiscoveryOptions = {}): Discovery {
  const log = logger.child({ component: 'discovery' });
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const { pollIntervalMs, requestTimeoutMs, maxStaleMs } = config.ec2;
  const stats = options.stats ?? new DiscoveryStats();

  const records = config.zones.flatMap((z) => z.records);
  const keys = new Map(records.map((r) => [r.fqdn, sourceKey(r.source)]));
  const statics = staticAnswers(records);
  const needsApi = records.some((r) => r.source.kind !== 'static');

  let ownedClient: EC2Client | undefined;
  let stopped = false;
  let backend: Backend;
  if (config.ec2.inventory !== undefined) {
    backend = { kind: 'inventory', file: config.ec2.inventory };
  } else if (options.client !== undefined || needsApi) {
    // The SDK (and the client) are loaded by the first poll, not here: the
    // module alone costs tens of MB of RSS, which a config that never calls
    // the API should not pay. A failed load fails that poll and is retried.
    let loading: Promise<Ec2Calls> | undefined;
    const load = async (): Promise<Ec2Calls> => {
      const api = await import('./api.js');
      let client = options.client;
      if (client === undefined) {
        if (stopped) throw new Error('discovery stopped');
        client = ownedClient = api.createEc2Client({
          requestTimeoutMs,
          ...(config.ec2.region !== undefined ? { region: config.ec2.region } : {}),
          ...(config.ec2.endpoint !== undefined ? { endpoint: config.ec2.endpoint } : {}),
        });
      }
      return api.ec2Calls(client);
    };
    backend = {
      kind: 'api',
      calls: () =>
        (loading ??= load().catch((err: unknown) => {
          loading = undefined;
          throw err;
        })),
    };
  } else {
    // A static-only config never calls the API, so it needs no client.
    backend = { kind: 'none' };
  }
  const plan: SourcePlan = createSourcePlan(records, backend, { elasticIpMap: config.upstream.rewriteElasticIps });
  if (config.upstream.rewriteElasticIps && !plan.mapsElasticIps) {
    log.info('rewrite_elastic_ips inactive: this server polls no EC2 data for its zones');
  }

  let lastSuccessAt: number | undefined;
  const origin: Provenance = { keys, confirmedAt: () => lastSuccessAt };
  type Fields = Omit<Snapshot, 'records' | 'stale' | 'expired'> & {
    readonly records: ReadonlyMap<string, readonly string[]>;
    readonly stale: boolean;
    readonly expired: boolean;
  };
  const freeze = ({ stale, expired, ...rest }: Fields): Snapshot => {
    const snap: Snapshot = Object.freeze({
      ...rest,
      ...(stale ? { stale: true } : {}),
      ...(expired ? { expired: true } : {}),
    });
    provenance.set(snap, origin);
    return snap;
  };

  // Initial state: static answers, plus whatever the seed may carry.
  const seed = options.seed;
  const carried = carryOver(seed, records, keys);
  if (seed !== undefined && carried.size > 0) {
    const confirmed = provenance.get(seed)?.confirmedAt() ?? seed.fetchedAt;
    if (confirmed > 0) lastSuccessAt = confirmed;
  }
  const initialRecords = new Map<string, readonly string[]>(carried);
  for (const [name, ips] of statics) initialRecords.set(name, Object.freeze(ips));
  const initiallyExpired = lastSuccessAt !== undefined && now() - lastSuccessAt > maxStaleMs;
  let snapshot = freeze({
    ...(plan.mapsElasticIps && seed?.elasticIps !== undefined ? { elasticIps: seed.elasticIps } : {}),
    generation: seed !== undefined ? seed.generation + 1 : 0,
    fetchedAt: carried.size > 0 && seed !== undefined ? seed.fetchedAt : 0,
    records: initialRecords,
    stale: carried.size > 0 && (seed?.stale === true || initiallyExpired),
    expired: initiallyExpired,
  });

  // History starts with what is answered from the start (static names, carried data).
  for (const [name, ips] of initialRecords) {
    const h = stats.records.get(name);
    if (h === undefined || !sameAddresses(h.origins.map((o) => o.ip), ips)) {
      stats.records.set(name, { origins: ips.map((ip) => ({ ip })), since: now() });
    }
  }

  const listeners = new Set<(next: Snapshot, previous: Snapshot) => void>();
  // Even a seed that is already expired starts here, so its first failure still logs a line.
  let health: DiscoveryState = 'starting';
  let failures = 0;
  let firstFailureAt = 0;
  let lastError: DescribedError | undefined;
  let lastErrorAt: number | undefined;
  let inFlight: Promise<void> | undefined;
  let inFlightAbort: AbortController | undefined;
  let timer: NodeJS.Timeout | undefined;
  let started = false;

  /** The current data, for a publish that changes only the flags. */
  function kept(): Pick<Fields, 'fetchedAt' | 'records' | 'elasticIps'> {
    return {
      fetchedAt: snapshot.fetchedAt,
      records: snapshot.records,
      ...(snapshot.elasticIps !== undefined ? { elasticIps: snapshot.elasticIps } : {}),
    };
  }

  function publish(next: Omit<Fields, 'generation'>): void {
    const previous = snapshot;
    snapshot = freeze({ ...next, generation: previous.generation + 1 });
    for (const listener of listeners) {
      try {
        listener(snapshot, previous);
      } catch (err) {
        log.error({ error: describeError(err) }, 'snapshot listener threw');
      }
    }
  }

  /** Keeps each name's origins current and remembers its last move. */
  function remember(name: string, before: readonly string[] | undefined, origins: readonly AddressOrigin[], at: number): void {
    const h = stats.records.get(name);
    if (h === undefined || before === undefined) {
      stats.records.set(name, { origins, since: at });
      return;
    }
    if (sameAddresses(before, origins.map((o) => o.ip))) {
      h.origins = origins;
      return;
    }
    stats.recordsChanged++;
    // The previous origins when this name was seen by a poll; bare addresses when they were carried or static.
    const from = sameAddresses(h.origins.map((o) => o.ip), before) ? h.origins : before.map((ip) => ({ ip }));
    stats.records.set(name, { origins, since: at, lastChange: { at, from, to: origins } });
  }

  function onSuccess({ answers, origins, elasticIps }: PollResult, at: number): void {
    const previous = snapshot.records;
    const previousMap = snapshot.elasticIps;
    const mapChanged = elasticIps !== undefined && !sameMap(previousMap, elasticIps);
    const next = new Map<string, readonly string[]>();
    let changed = previous.size !== statics.size + answers.size;
    for (const [name, ips] of statics) next.set(name, previous.get(name) ?? Object.freeze(ips));
    for (const [name, ips] of answers) {
      const before = previous.get(name);
      remember(name, before, origins.get(name) ?? ips.map((ip) => ({ ip })), at);
      if (sameAddresses(before, ips)) {
        // Same array object: a listener can skip re-encoding by identity.
        next.set(name, before as readonly string[]);
        continue;
      }
      changed = true;
      next.set(name, Object.freeze(ips));
      log.info({ record: name, from: before ?? null, to: ips }, before === undefined ? 'record data' : 'record changed');
    }
    if (health === 'degraded' || health === 'expired') {
      log.info(
        { failures, downMs: at - firstFailureAt, lastError },
        health === 'expired' ? 'EC2 discovery recovered; answers fresh again' : 'EC2 discovery recovered',
      );
    }
    health = 'ok';
    failures = 0;
    lastError = undefined;
    lastErrorAt = undefined;
    lastSuccessAt = at;
    stats.pollsOk++;
    log.debug({ changed }, 'poll ok');
    if (changed || mapChanged || snapshot.stale === true || snapshot.expired === true) {
      // Unchanged names keep their array object, so a listener can skip them by identity.
      const map = mapChanged ? elasticIps : previousMap;
      publish({ ...(map !== undefined ? { elasticIps: map } : {}), fetchedAt: at, records: next, stale: false, expired: false });
    }
  }

  function checkExpiry(): void {
    if (lastSuccessAt === undefined || snapshot.expired === true) return;
    const age = now() - lastSuccessAt;
    if (age <= maxStaleMs) return;
    health = 'expired';
    log.error(
      { ageMs: age, maxStaleMs, failures, lastError },
      'EC2 data older than max_stale: withholding discovered answers (SERVFAIL)',
    );
    publish({ ...kept(), stale: true, expired: true });
  }

  function onFailure(err: unknown): void {
    failures += 1;
    lastError = describeError(err);
    lastErrorAt = now();
    stats.pollsFailed++;
    stats.countError(lastError.code);
    log.debug({ failures, error: lastError }, 'poll failed');
    if (health === 'starting' || health === 'ok') {
      firstFailureAt = now();
      health = 'degraded';
      log.warn(
        { error: lastError, kinds: plan.kinds },
        lastSuccessAt === undefined
          ? 'EC2 discovery failing: no data yet (SERVFAIL for discovered names)'
          : 'EC2 discovery degraded: serving last known answers',
      );
    }
    if (snapshot.stale !== true) {
      publish({ ...kept(), stale: true, expired: false });
    }
    checkExpiry();
  }

  async function runPoll(): Promise<void> {
    const abort = new AbortController();
    inFlightAbort = abort;
    const deadline = setTimeout(() => abort.abort(new PollTimeoutError(requestTimeoutMs)), requestTimeoutMs);
    deadline.unref();
    // Settles at the deadline even if something under the SDK ignores the
    // signal (credential providers, retry sleeps).
    const aborted = new Promise<never>((_, reject) => {
      abort.signal.addEventListener('abort', () => reject(abort.signal.reason), { once: true });
    });
    aborted.catch(() => undefined);
    const report = (kind: DiscoveredKind, outcome: CallOutcome): void => {
      if (!stopped) stats.calls[kind][outcome]++;
    };
    const startedAt = performance.now();
    try {
      const answers = await Promise.race([plan.fetch(abort.signal, report), aborted]);
      if (!stopped) onSuccess(answers, now());
    } catch (err) {
      if (!stopped) onFailure(err);
    } finally {
      if (!stopped) stats.observePollSeconds?.((performance.now() - startedAt) / 1000);
      clearTimeout(deadline);
      inFlightAbort = undefined;
      abort.abort(); // release anything still running from a poll that already settled
    }
  }

  function poll(): Promise<void> {
    inFlight ??= runPoll().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  function nextDelay(): number {
    let delay = pollDelay(pollIntervalMs, failures, random);
    // Wake up in time to mark the data expired rather than up to a minute late.
    if (failures > 0 && lastSuccessAt !== undefined && snapshot.expired !== true) {
      delay = Math.min(delay, Math.max(1, lastSuccessAt + maxStaleMs - now() + 1));
    }
    return delay;
  }

  /**
   * Times the next poll from the start of the previous one, so the time a
   * slow EC2 call takes does not add to the failover bound.
   */
  function schedule(previousStart: number): void {
    if (stopped) return;
    const wait = Math.max(0, nextDelay() - (performance.now() - previousStart));
    timer = setTimeout(pollAndSchedule, wait);
    timer.unref();
  }

  function pollAndSchedule(): void {
    timer = undefined;
    const startedAt = performance.now();
    void poll().then(() => schedule(startedAt));
  }

  function describeSelector(source: RecordSource): string {
    const tags = (t: Readonly<Record<string, string>>): string =>
      `tag ${Object.entries(t).map(([k, v]) => `${k}=${v}`).join(',')}`;
    switch (source.kind) {
      case 'static':
        return source.addresses.join(' ');
      case 'instances':
        return tags(source.tag);
      case 'network_interface':
        return [source.id, source.tag && tags(source.tag)].filter(Boolean).join(' ');
      case 'elastic_ip': {
        const { selector } = source;
        if (selector.allocationId !== undefined) return selector.allocationId;
        if (selector.publicIp !== undefined) return selector.publicIp;
        return tags(selector.tag ?? {});
      }
    }
  }

  function view(): DiscoveryView {
    const at = now();
    return {
      state: health,
      backend: backend.kind,
      kinds: plan.kinds,
      pollIntervalMs,
      ...(lastSuccessAt !== undefined ? { lastSuccessAt, ageMs: Math.max(0, at - lastSuccessAt) } : {}),
      consecutiveFailures: failures,
      ...(lastError !== undefined ? { lastError } : {}),
      ...(lastErrorAt !== undefined ? { lastErrorAt } : {}),
      snapshot: {
        generation: snapshot.generation,
        fetchedAt: snapshot.fetchedAt,
        stale: snapshot.stale === true,
        expired: snapshot.expired === true,
      },
      records: records.map((r): RecordView => {
        const addresses = snapshot.records.get(r.fqdn);
        const h = stats.records.get(r.fqdn);
        const current = h !== undefined && addresses !== undefined && sameAddresses(h.origins.map((o) => o.ip), addresses);
        return {
          name: r.fqdn,
          kind: r.source.kind,
          selector: describeSelector(r.source),
          addresses: addresses ?? null,
          origins: current && r.source.kind !== 'static' ? h.origins : [],
          ...(h !== undefined && addresses !== undefined ? { since: h.since } : {}),
          ...(h?.lastChange !== undefined ? { lastChange: h.lastChange } : {}),
        };
      }),
      stats,
    };
  }

  return {
    view,
    current: () => snapshot,
    onChange(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    start() {
      if (started || stopped) return;
      started = true;
      pollAndSchedule();
    },
    async pollNow() {
      if (inFlight !== undefined) await inFlight;
      await poll();
    },
    waiting() {
      const out: string[] = [];
      for (const zone of config.zones) {
        const missing = zone.records.filter((r) => r.source.kind !== 'static' && !snapshot.records.has(r.fqdn)).length;
        if (missing === 0) continue;
        out.push(
          `zone ${zone.name}: waiting for the first EC2 snapshot (${missing} name${missing === 1 ? '' : 's'} without data` +
            `${lastError !== undefined ? `; last poll failed: ${lastError.code}` : ''})`,
        );
      }
      return out;
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      inFlightAbort?.abort(new Error('discovery stopped'));
      await inFlight;
      ownedClient?.destroy();
    },
  };
}

/**
 * Delay between poll starts: 90–100% of the interval while healthy (the
 * interval is a ceiling, so a move is seen within one interval plus the
 * poll's own time, while servers polling the same account drift apart); after n
 * consecutive failures, full jitter between the interval and
 * min(interval·2ⁿ, 60 s), so a fleet of servers spreads out its retries
 * against a throttled account instead of hammering it in step.
 */
export function pollDelay(intervalMs: number, failures: number, random: () => number): number {
  if (failures === 0) return intervalMs * (1 - INTERVAL_JITTER * random());
  const ceiling = Math.max(intervalMs, Math.min(MAX_BACKOFF_MS, intervalMs * 2 ** failures));
  return intervalMs + random() * (ceiling - intervalMs);
}
