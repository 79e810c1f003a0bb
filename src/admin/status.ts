// GET /status: what the server knows, as JSON for people and scripts, and
// the table `eipdns status` prints from it. The question it must answer at a
// glance: "when did db.internal last move, and where?" — so every record
// carries its addresses, where each comes from (the Elastic IP, instance or
// ENI, read from the same Describe call that produced it) and its last change.

import type { CacheStats } from '../cache/stats.js';
import type { Config } from '../config/types.js';
import type { DescribedError } from '../ec2/client.js';
import type { DiscoveryView, RecordChange } from '../ec2/discovery.js';
import type { AddressOrigin } from '../ec2/match.js';
import type { ForwardChain } from '../chain.js';
import type { ReadinessState } from './readiness.js';

export interface ReloadRecord {
  readonly ok: number;
  readonly failed: number;
  /** The last failed reload (the running config stayed). */
  readonly lastFailure?: { readonly at: number; readonly error: string };
}

/** What the model is built from. */
export interface StatusSources {
  readonly version: string;
  readonly startedAt: number;
  /** DNS listeners, "host:port". */
  readonly listen: readonly string[];
  config(): Config;
  /** Epoch ms the running config was loaded. */
  loadedAt(): number;
  reloads(): ReloadRecord;
  readiness(): ReadinessState;
  discovery(): DiscoveryView;
  chain(): ForwardChain;
  zoneSerials(): ReadonlyArray<{ readonly zone: string; readonly role: string; readonly serial: number | undefined }>;
  /** Discovery's clock (tests inject one). */
  now(): number;
}

export interface ChangeModel {
  readonly at: string;
  readonly from: readonly AddressOrigin[];
  readonly to: readonly AddressOrigin[];
}

export interface RecordModel {
  readonly name: string;
  readonly zone: string;
  readonly kind: string;
  readonly selector: string;
  /** null: no data yet (queries get SERVFAIL); []: known to have none (NODATA). */
  readonly addresses: readonly string[] | null;
  readonly origins: readonly AddressOrigin[];
  /** Since when the current addresses are answered. */
  readonly since: string | null;
  /** The last move, or null when none was seen since the server started. */
  readonly lastChange: ChangeModel | null;
}

export interface UpstreamServerModel {
  readonly server: string;
  readonly suspect: boolean;
  readonly suspectForMs: number;
  /** Consecutive failures (an outage's burst counts once). */
  readonly failures: number;
  readonly sent: number;
  readonly timeouts: number;
  readonly errors: number;
}

export interface StatusModel {
  readonly version: string;
  readonly node: string;
  readonly now: string;
  readonly startedAt: string;
  readonly ready: boolean;
  readonly waiting: readonly string[];
  readonly listen: readonly string[];
  readonly config: {
    readonly file: string;
    readonly loadedAt: string;
    readonly reloads: { readonly ok: number; readonly failed: number };
    readonly lastReloadFailure: { readonly at: string; readonly error: string } | null;
  };
  readonly discovery: {
    readonly state: string;
    readonly backend: string;
    /** The Describe calls each poll makes. */
    readonly kinds: readonly string[];
    readonly pollIntervalMs: number;
    readonly lastSuccessAt: string | null;
    readonly ageSeconds: number | null;
    readonly consecutiveFailures: number;
    readonly lastError: (DescribedError & { readonly at: string | null }) | null;
    readonly snapshot: { readonly generation: number; readonly fetchedAt: string | null; readonly stale: boolean; readonly expired: boolean };
  };
  readonly records: readonly RecordModel[];
  /** Each zone's SOA serial (null: no data yet): equal across a fleet once a change reached every host. */
  readonly zones: ReadonlyArray<{ readonly zone: string; readonly role: string; readonly serial: number | null }>;
  readonly upstream: {
    readonly servers: readonly UpstreamServerModel[];
    readonly inFlight: number;
    readonly qps: number;
    readonly maxQps: number;
    readonly budgetRejections: number;
  };
  /** Present when the forward chain has a cache. */
  readonly cache?: CacheStats;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const isoOrNull = (ms: number | undefined): string | null => (ms === undefined || ms <= 0 ? null : iso(ms));

const change = (c: RecordChange): ChangeModel => ({ at: iso(c.at), from: c.from, to: c.to });

export function buildStatus(src: StatusSources): StatusModel {
  const config = src.config();
  const d = src.discovery();
  const chain = src.chain();
  const up = chain.upstream.stats();
  const budget = chain.budget.stats();
  const cache = chain.cache?.stats();
  const readiness = src.readiness();
  const reloads = src.reloads();
  const zoneOf = new Map<string, string>();
  for (const z of config.zones) for (const r of z.records) zoneOf.set(r.fqdn, z.name);
  return {
    version: src.version,
    node: process.version,
    now: iso(src.now()),
    startedAt: iso(src.startedAt),
    ready: readiness.ready,
    waiting: readiness.waiting,
    listen: src.listen,
    config: {
      file: config.file,
      loadedAt: iso(src.loadedAt()),
      reloads: { ok: reloads.ok, failed: reloads.failed },
      lastReloadFailure: reloads.lastFailure ? { at: iso(reloads.lastFailure.at), error: reloads.lastFailure.error } : null,
    },
    discovery: {
      state: d.state,
      backend: d.backend,
      kinds: d.kinds,
      pollIntervalMs: d.pollIntervalMs,
      lastSuccessAt: isoOrNull(d.lastSuccessAt),
      ageSeconds: d.ageMs === undefined ? null : Math.round(d.ageMs / 100) / 10,
      consecutiveFailures: d.consecutiveFailures,
      lastError: d.lastError ? { ...d.lastError, at: isoOrNull(d.lastErrorAt) } : null,
      snapshot: {
        generation: d.snapshot.generation,
        fetchedAt: isoOrNull(d.snapshot.fetchedAt),
        stale: d.snapshot.stale,
        expired: d.snapshot.expired,
      },
    },
    records: d.records.map((r) => ({
      name: r.name,
      zone: zoneOf.get(r.name) ?? '',
      kind: r.kind,
      selector: r.selector,
      addresses: r.addresses,
      origins: r.origins,
      since: isoOrNull(r.since),
      lastChange: r.lastChange ? change(r.lastChange) : null,
    })),
    zones: src.zoneSerials().map((z) => ({ zone: z.zone, role: z.role, serial: z.serial ?? null })),
    upstream: {
      servers: up.servers.map((s) => ({
        server: s.server,
        suspect: s.suspectForMs > 0,
        suspectForMs: s.suspectForMs,
        failures: s.failures,
        sent: s.sent,
        timeouts: s.timeouts,
        errors: s.errors,
      })),
      inFlight: up.inFlight,
      qps: budget.currentQps,
      maxQps: budget.maxQps,
      budgetRejections: budget.rejected,
    },
    ...(cache !== undefined ? { cache } : {}),
  };
}

// ---- the table `eipdns status` prints -----------------------------------------

/** "203.0.113.10 eipalloc-… → i-…", "i-…", "eni-… (i-…)": the holder of one address. */
export function describeOrigin(o: AddressOrigin): string {
  const holder = o.instanceId !== undefined && o.networkInterfaceId !== undefined && o.publicIp === undefined
    ? `${o.networkInterfaceId} (${o.instanceId})`
    : (o.instanceId ?? o.networkInterfaceId);
  if (o.allocationId !== undefined || o.publicIp !== undefined) {
    const eip = [o.publicIp, o.allocationId].filter(Boolean).join(' ');
    return holder !== undefined ? `${eip} → ${holder}` : eip;
  }
  return holder ?? '';
}

function addressesWithHolders(list: readonly AddressOrigin[]): string {
  if (list.length === 0) return 'none';
  return list
    .map((o) => {
      const holder = o.instanceId ?? o.networkInterfaceId;
      return holder !== undefined ? `${o.ip} (${holder})` : o.ip;
    })
    .join(', ');
}

/** "14:03:12Z" when on the same day as `now`, else "2026-12-01 14:03:12Z"; with "(5m ago)". */
function when(at: string, now: string): string {
  const t = Date.parse(at);
  const n = Date.parse(now);
  const text = at.slice(0, 10) === now.slice(0, 10) ? `${at.slice(11, 19)}Z` : `${at.slice(0, 10)} ${at.slice(11, 19)}Z`;
  return `${text} (${ago(n - t)})`;
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

export function renderStatus(m: StatusModel): string {
  const out: string[] = [];
  out.push(`eipdns ${m.version} (node ${m.node}), ${m.ready ? 'ready' : `NOT READY: ${m.waiting.join('; ')}`}; up since ${when(m.startedAt, m.now)}`);
  out.push(
    `config ${m.config.file}, loaded ${when(m.config.loadedAt, m.now)}; reloads ${m.config.reloads.ok} ok, ${m.config.reloads.failed} failed` +
      (m.config.lastReloadFailure ? ` (last failure ${when(m.config.lastReloadFailure.at, m.now)}: ${m.config.lastReloadFailure.error})` : ''),
  );
  const d = m.discovery;
  const calls = d.kinds.length === 0 ? 'no EC2 calls' : `${d.kinds.join(', ')} every ${d.pollIntervalMs / 1000}s`;
  out.push(
    `discovery ${d.state}` +
      (d.lastSuccessAt ? `, last success ${when(d.lastSuccessAt, m.now)}` : ', no successful poll yet') +
      `, snapshot #${d.snapshot.generation}${d.snapshot.expired ? ' EXPIRED' : d.snapshot.stale ? ' stale' : ''} (${d.backend}: ${calls})`,
  );
  if (d.lastError) {
    out.push(`  last error ${d.lastError.code}: ${d.lastError.message}${d.lastError.at ? ` at ${when(d.lastError.at, m.now)}` : ''}, ${d.consecutiveFailures} failure(s) in a row`);
  }
  out.push('');
  const rows: string[][] = [['NAME', 'ADDRESSES', 'FROM', 'SINCE', 'LAST MOVE']];
  for (const r of m.records) {
    const from =
      r.kind === 'static' ? 'static' : r.origins.length > 0 ? r.origins.map(describeOrigin).join(', ') : `${r.kind} ${r.selector}`;
    const lastMove = r.lastChange
      ? `${when(r.lastChange.at, m.now)}: ${addressesWithHolders(r.lastChange.from)} → ${addressesWithHolders(r.lastChange.to)}`
      : 'none seen';
    rows.push([
      r.name,
      r.addresses === null ? '(no data: SERVFAIL)' : r.addresses.length === 0 ? '(none: NODATA)' : r.addresses.join(', '),
      from,
      r.since ? when(r.since, m.now) : '-',
      lastMove,
    ]);
  }
  out.push(table(rows));
  out.push(`zones ${m.zones.map((z) => `${z.zone} (${z.role}) serial ${z.serial ?? 'none yet'}`).join(', ')}`);
  out.push('');
  const up: string[][] = [['UPSTREAM', 'STATE', 'SENT', 'TIMEOUTS', 'ERRORS']];
  for (const s of m.upstream.servers) {
    up.push([s.server, s.suspect ? `suspect ${Math.ceil(s.suspectForMs / 1000)}s (${s.failures} failures)` : 'ok', String(s.sent), String(s.timeouts), String(s.errors)]);
  }
  if (m.upstream.servers.length > 0) out.push(table(up));
  else out.push('no upstream servers (private zones only)');
  out.push(`upstream rate ${m.upstream.qps}/s of max ${m.upstream.maxQps}/s, ${m.upstream.inFlight} in flight, ${m.upstream.budgetRejections} refused by the budget`);
  if (m.cache) {
    const c = m.cache;
    out.push(`cache ${c.entries}/${c.maxEntries} entries, ${c.bytes}/${c.maxBytes} bytes; ${c.hits} hits, ${c.misses} misses, ${c.staleServed} stale served`);
  }
  return `${out.join('\n')}\n`;
}
