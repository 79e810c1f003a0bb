// The Prometheus registry behind GET /metrics. Rooms never import prom-client:
// they keep plain numbers (PipelineStats, UpstreamStats, BudgetStats,
// CacheStats, RewriteStats, DiscoveryStats) that the collect callbacks below
// read when Prometheus scrapes, so counting costs the query path an
// increment and nothing else. The three histograms cannot be rebuilt from
// totals, so those rooms hold a tiny sink (`(seconds) => void`) that this
// registry fills with a prebound child, and call it only as often as their
// README says (1 query in 16 for request durations).
//
// Names follow CoreDNS's (coredns_dns_requests_total → eipdns_dns_requests_total,
// …). Labels are bounded: transports, reply sources, rcodes, configured
// upstream servers, Describe kinds, error codes (at most 32). Never a client
// address, never a query name.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, exponentialBuckets } from 'prom-client';
import type { CacheStats } from '../cache/stats.js';
import type { RequestTiming } from '../dns/pipeline.js';
import { REPLY_SOURCES, type PipelineStats, type ReplySource } from '../dns/stats.js';
import { CALL_OUTCOMES, DISCOVERED_KINDS, DISCOVERY_STATES, type DiscoveryView } from '../ec2/discovery.js';
import type { ForwardChain } from '../chain.js';
import type { TransferStats } from '../transfer/stats.js';
import { rcodeName } from '../wire/codes.js';

export interface ReloadCounts {
  readonly ok: number;
  readonly failed: number;
}

/** What the registry reads at scrape time. Functions, because reloads replace the chain and discovery. */
export interface MetricsSources {
  pipeline(): PipelineStats;
  chain(): ForwardChain;
  discovery(): DiscoveryView;
  reloads(): ReloadCounts;
  /** The transfer room's counters, and each zone's serial. */
  transfer(): TransferStats;
  zoneSerials(): ReadonlyArray<{ readonly zone: string; readonly role: string; readonly serial: number | undefined }>;
  /** Admin requests refused by admin.allow. */
  adminRefused(): number;
  ready(): boolean;
}

export interface MetricsOptions {
  readonly version: string;
  /** 1 query in this many is timed for the request-duration histogram (a power of two). Default 16. */
  readonly sampleEvery?: number;
  /** prom-client's process and Node.js metrics (default on). */
  readonly defaultMetrics?: boolean;
}

export const DEFAULT_SAMPLE_EVERY = 16;

/** 0.25 ms … 8 s, doubling: CoreDNS's request-duration buckets, fine enough for a 50 µs zone answer's neighbourhood. */
const DURATION_BUCKETS = exponentialBuckets(0.00025, 2, 16);
/** EC2 calls take tens of milliseconds to seconds; request_timeout_ms caps them. */
const POLL_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];


type Put = (labels: Record<string, string>, value: number) => void;

export class Metrics {
  readonly registry = new Registry();
  /** For Pipeline.setTiming. */
  readonly requestTiming: RequestTiming;
  private readonly upstreamDuration: Histogram<'server'>;
  private readonly pollDuration: Histogram;

  constructor(
    private readonly sources: MetricsSources,
    options: MetricsOptions,
  ) {
    const reg = this.registry;
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: reg });

    // A counter whose value lives in a room: reset and refilled at each scrape.
    const counter = (name: string, help: string, labelNames: readonly string[], read: (set: Put) => void): void => {
      new Counter({
        name,
        help,
        labelNames: [...labelNames],
        registers: [reg],
        collect() {
          this.reset();
          read((labels, value) => this.inc(labels, value));
        },
      });
    };
    const gauge = (name: string, help: string, labelNames: readonly string[], read: (set: Put) => void): void => {
      new Gauge({
        name,
        help,
        labelNames: [...labelNames],
        registers: [reg],
        collect() {
          this.reset();
          read((labels, value) => this.set(labels, value));
        },
      });
    };
    const src = this.sources;

    // ---- build, config, admin ----
    new Gauge({ name: 'eipdns_build_info', help: 'Always 1; the labels say which eipdns and Node.js run.', labelNames: ['version', 'node'], registers: [reg] })
      .labels(options.version, process.version)
      .set(1);
    counter('eipdns_config_reloads_total', 'Config reloads (SIGHUP) by result: ok, or failed (the running config stayed).', ['result'], (set) => {
      const r = src.reloads();
      set({ result: 'ok' }, r.ok);
      set({ result: 'failed' }, r.failed);
    });
    counter('eipdns_admin_refused_total', 'Admin HTTP requests refused because the client is outside admin.allow.', [], (set) => set({}, src.adminRefused()));
    gauge('eipdns_ready', '1 when GET /ready answers 200.', [], (set) => set({}, src.ready() ? 1 : 0));

    // ---- the DNS pipeline ----
    const p = (): PipelineStats => src.pipeline();
    counter('eipdns_dns_requests_total', 'DNS messages received, by transport.', ['proto'], (set) => {
      set({ proto: 'udp' }, p().requests.udp);
      set({ proto: 'tcp' }, p().requests.tcp);
    });
    counter(
      'eipdns_dns_responses_total',
      'DNS replies sent, by rcode and source: zone (private zones), cache, stale (served stale), upstream, local (refusals, FORMERR, NOTIMP).',
      ['rcode', 'source'],
      (set) => {
        for (const source of REPLY_SOURCES) {
          p().responses[source].forEach((n, rcode) => {
            if (n > 0) set({ rcode: rcodeName(rcode), source }, n);
          });
        }
      },
    );
    counter('eipdns_dns_acl_refused_total', 'Queries REFUSED because the client is outside acl.allow.', [], (set) => set({}, p().aclRefused));
    counter('eipdns_dns_dropped_total', 'Messages dropped without a reply (no DNS header, or QR set).', [], (set) => set({}, p().dropped));
    gauge('eipdns_dns_forward_pending', 'Forwarded queries waiting for an answer.', [], (set) => set({}, p().pending));
    counter(
      'eipdns_dns_forward_failures_total',
      'Forwarded queries answered SERVFAIL because no layer had an answer, by reason (Timeout, AllFailed, OverBudget, Overload, Closed).',
      ['code'],
      (set) => {
        for (const [code, n] of p().forwardErrors) set({ code }, n);
      },
    );
    const requestDuration = new Histogram({
      name: 'eipdns_dns_request_duration_seconds',
      help: `Time from a query's arrival to its reply, by source; 1 query in ${options.sampleEvery ?? DEFAULT_SAMPLE_EVERY} is timed (see eipdns_dns_responses_total for counts).`,
      labelNames: ['source'],
      buckets: DURATION_BUCKETS,
      registers: [reg],
    });
    const observe = {} as Record<ReplySource, (seconds: number) => void>;
    for (const source of REPLY_SOURCES) {
      const child = requestDuration.labels(source);
      observe[source] = (s) => child.observe(s);
    }
    this.requestTiming = { observe, every: options.sampleEvery ?? DEFAULT_SAMPLE_EVERY };

    // ---- upstream ----
    counter('eipdns_upstream_requests_total', 'Queries written to each upstream server (UDP datagrams and TCP messages, retries included).', ['server'], (set) => {
      for (const s of src.chain().upstream.stats().servers) set({ server: s.server }, s.sent);
    });
    counter('eipdns_upstream_failures_total', 'Upstream attempts that failed, by server and reason (Timeout, or Error: send error, TCP refused or reset).', ['server', 'reason'], (set) => {
      for (const s of src.chain().upstream.stats().servers) {
        set({ server: s.server, reason: 'Timeout' }, s.timeouts);
        set({ server: s.server, reason: 'Error' }, s.errors);
      }
    });
    gauge('eipdns_upstream_suspect', '1 while a server is suspect (recently failed: asked after the others).', ['server'], (set) => {
      for (const s of src.chain().upstream.stats().servers) set({ server: s.server }, s.suspectForMs > 0 ? 1 : 0);
    });
    counter('eipdns_upstream_mismatched_total', 'Upstream replies dropped: wrong source, ID or question, or not a response (RFC 5452).', [], (set) =>
      set({}, src.chain().upstream.stats().mismatched),
    );
    gauge('eipdns_upstream_in_flight', 'Queries waiting for an upstream answer.', [], (set) => set({}, src.chain().upstream.stats().inFlight));
    this.upstreamDuration = new Histogram({
      name: 'eipdns_upstream_request_duration_seconds',
      help: 'Time from sending a query upstream to its accepted reply, by server (every answered attempt).',
      labelNames: ['server'],
      buckets: DURATION_BUCKETS,
      registers: [reg],
    });
    gauge('eipdns_upstream_qps', 'Queries written upstream in the last second (compare with eipdns_upstream_max_qps).', [], (set) =>
      set({}, src.chain().budget.stats().currentQps),
    );
    gauge('eipdns_upstream_max_qps', 'upstream.max_qps: the cap on queries written upstream per second (the VPC resolver drops past 1024/s).', [], (set) =>
      set({}, src.chain().budget.stats().maxQps),
    );
    counter('eipdns_upstream_budget_rejections_total', 'Queries not sent because upstream.max_qps was reached.', [], (set) => set({}, src.chain().budget.stats().rejected));
    counter('eipdns_rewrite_answers_total', 'Forwarded answers in which an Elastic IP was swapped for its private IP (upstream.rewrite_elastic_ips).', [], (set) =>
      set({}, src.chain().rewrite?.stats().rewritten ?? 0),
    );

    // ---- the answer cache (zero while cache.enabled is false) ----
    const cacheStats = (): CacheStats | undefined => src.chain().cache?.stats();
    const cacheGauges: Array<[string, keyof CacheStats, string]> = [
      ['eipdns_cache_entries', 'entries', 'Entries in the answer cache.'],
      ['eipdns_cache_bytes', 'bytes', 'Bytes held by the answer cache.'],
      ['eipdns_cache_max_entries', 'maxEntries', 'cache.max_entries.'],
      ['eipdns_cache_max_bytes', 'maxBytes', 'cache.max_bytes.'],
      ['eipdns_cache_in_flight', 'inFlight', 'Upstream queries the cache has in flight (each may have many waiting clients).'],
    ];
    for (const [name, key, help] of cacheGauges) gauge(name, help, [], (set) => set({}, cacheStats()?.[key] ?? 0));
    const cacheCounters: Array<[string, keyof CacheStats, string]> = [
      ['eipdns_cache_hits_total', 'hits', 'Forwarded queries answered from the cache (fresh).'],
      ['eipdns_cache_misses_total', 'misses', 'Forwarded queries the cache could not answer.'],
      ['eipdns_cache_stale_served_total', 'staleServed', 'Expired answers served (RFC 8767 serve-stale).'],
      ['eipdns_cache_prefetches_total', 'prefetches', 'Entries refreshed ahead of expiry because they were asked for.'],
      ['eipdns_cache_refreshes_total', 'refreshes', 'Background refreshes of stale entries.'],
      ['eipdns_cache_coalesced_total', 'coalesced', 'Queries that joined an identical one already in flight upstream.'],
      ['eipdns_cache_evictions_total', 'evictions', 'Entries evicted to stay within cache.max_entries / cache.max_bytes.'],
      ['eipdns_cache_insertions_total', 'insertions', 'Answers stored in the cache.'],
      ['eipdns_cache_failures_cached_total', 'failuresCached', 'Upstream failures remembered (RFC 9520).'],
      ['eipdns_cache_expired_total', 'expired', 'Entries dropped when found past their stale window.'],
      ['eipdns_cache_bypassed_total', 'bypassed', 'Queries that went around the cache (EDNS Client Subnet, or RD=0).'],
    ];
    for (const [name, key, help] of cacheCounters) counter(name, help, [], (set) => set({}, cacheStats()?.[key] ?? 0));

    // ---- EC2 discovery ----
    counter('eipdns_ec2_polls_total', 'EC2 Describe calls (one per kind per poll, pages included) by kind and result: ok, error, or cancelled (another kind of the same poll failed first).', ['kind', 'result'], (set) => {
      const { calls } = src.discovery().stats;
      for (const kind of DISCOVERED_KINDS) for (const result of CALL_OUTCOMES) set({ kind, result }, calls[kind][result]);
    });
    counter('eipdns_ec2_errors_total', 'Failed polls by error code (AWS error codes such as RequestLimitExceeded; PollTimeout; socket errors).', ['code'], (set) => {
      for (const [code, n] of src.discovery().stats.errors) set({ code }, n);
    });
    counter('eipdns_records_changed_total', 'Record address changes seen by discovery (an EIP moved, an instance came or went).', [], (set) =>
      set({}, src.discovery().stats.recordsChanged),
    );
    gauge(
      'eipdns_ec2_snapshot_age_seconds',
      'Seconds since the last successful poll (+Inf before the first one; 0 when no record needs EC2).',
      [],
      (set) => {
        const d = src.discovery();
        set({}, d.kinds.length === 0 ? 0 : d.ageMs === undefined ? Number.POSITIVE_INFINITY : d.ageMs / 1000);
      },
    );
    gauge('eipdns_discovery_state', 'Discovery state: 1 for the current one of starting, ok, degraded (last poll failed, last answers served), expired (older than max_stale: SERVFAIL).', ['state'], (set) => {
      const { state } = src.discovery();
      for (const s of DISCOVERY_STATES) set({ state: s }, s === state ? 1 : 0);
    });
    // ---- zones and zone transfer ----
    gauge(
      'eipdns_zone_serial',
      "Each zone's SOA serial (moves only when the zone's data changes): equal across a fleet once a change has reached every host.",
      ['zone', 'role'],
      (set) => {
        for (const z of src.zoneSerials()) if (z.serial !== undefined) set({ zone: z.zone, role: z.role }, z.serial);
      },
    );
    const t = (): TransferStats => src.transfer();
    counter('eipdns_transfer_served_total', 'Zone transfers served as a primary, by kind: axfr, ixfr, ixfr_full (history too short: the whole zone), up_to_date.', ['kind'], (set) => {
      const s = t().served;
      set({ kind: 'axfr' }, s.axfr);
      set({ kind: 'ixfr' }, s.ixfr);
      set({ kind: 'ixfr_full' }, s.ixfrAsFull);
      set({ kind: 'up_to_date' }, s.ixfrUpToDate);
    });
    counter('eipdns_transfer_refused_total', 'Zone transfer requests refused, by reason: acl (transfer.allow, key missing) or not_vouched (data expired or incomplete: SERVFAIL).', ['reason'], (set) => {
      set({ reason: 'acl' }, t().refused);
      set({ reason: 'not_vouched' }, t().notVouched);
    });
    counter('eipdns_tsig_failures_total', 'Signed messages that failed TSIG verification (BADKEY, BADSIG, BADTIME, BADTRUNC).', [], (set) => set({}, t().tsigFailures));
    counter('eipdns_tsig_strangers_total', 'Signed messages from outside acl.allow, every transfer.allow and every primary: REFUSED without verifying.', [], (set) => set({}, t().tsigStrangers));
    counter('eipdns_notify_total', 'NOTIFY messages, by direction and result: sent (datagrams, retries included), acked, failed (given up), received, refused.', ['direction', 'result'], (set) => {
      const n = t().notify;
      set({ direction: 'out', result: 'sent' }, n.sent);
      set({ direction: 'out', result: 'acked' }, n.acked);
      set({ direction: 'out', result: 'failed' }, n.failed);
      set({ direction: 'in', result: 'received' }, n.received);
      set({ direction: 'in', result: 'refused' }, n.refused);
    });
    counter('eipdns_transfer_fetched_total', 'Zone transfers taken as a secondary, by result: axfr, ixfr, up_to_date, failed.', ['result'], (set) => {
      const f = t().fetched;
      set({ result: 'axfr' }, f.axfr);
      set({ result: 'ixfr' }, f.ixfr);
      set({ result: 'up_to_date' }, f.upToDate);
      set({ result: 'failed' }, f.failed);
    });

    this.pollDuration = new Histogram({
      name: 'eipdns_ec2_poll_duration_seconds',
      help: 'Time one EC2 poll took (all its Describe calls, run in parallel).',
      buckets: POLL_BUCKETS,
      registers: [reg],
    });
  }

  /** A sink for one upstream server's latency (UpstreamOptions.latency). */
  upstreamLatency(server: string): (seconds: number) => void {
    const child = this.upstreamDuration.labels(server);
    return (s) => child.observe(s);
  }

  /** For DiscoveryStats.observePollSeconds. */
  readonly observePollSeconds = (seconds: number): void => this.pollDuration.observe(seconds);

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text. */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }
}
