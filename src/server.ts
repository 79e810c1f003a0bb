// Assembles the pipeline from a Config and keeps it current: discovery runs
// beside it and every new snapshot (or reload) swaps in a new immutable state.
// It also owns what outlives a reload (discovery's counters and record
// history, the budget, readiness) and the admin listener that shows them.

import { isDeepStrictEqual } from 'node:util';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { AdminLimits, AdminListener } from './admin/http.js';
import type { Metrics } from './admin/metrics.js';
import { Readiness } from './admin/readiness.js';
import { refresh } from './admin/refresh.js';
import { buildStatus, type ReloadRecord, type StatusModel } from './admin/status.js';
import { CacheStore } from './cache/store.js';
import { DEFAULT_TTL, loadConfig } from './config/load.js';
import { showHostPort } from './config/net.js';
import type { Config } from './config/types.js';
import { createAdmit, type Admit } from './dns/admit.js';
import { bindPair } from './dns/listen.js';
import { Pipeline, type PipelineState } from './dns/pipeline.js';
import { DEFAULT_TCP_OPTIONS, listenTcp, type TcpListener, type TcpOptions } from './dns/tcp.js';
import { listenUdp, type UdpListener } from './dns/udp.js';
import { createDiscovery, DiscoveryStats, type Discovery } from './ec2/discovery.js';
import { Budget } from './forward/budget.js';
import { buildForwardChain, type ChainState, type ForwardChain } from './chain.js';
import type { Logger } from './log.js';
import { rewriteViewOf, type RewriteView } from './forward/rewrite.js';
import { TransferRoom, type TransferRoomOptions } from './transfer/room.js';
import { STALE_TTL, ZoneAnswers, type ZoneView } from './zone/answers.js';
import type { Snapshot } from './zone/snapshot.js';

export interface ServerOptions {
  readonly logger: Logger;
  /** Tests pass a client with explicit credentials; otherwise the SDK default chain. */
  readonly ec2Client?: EC2Client;
  readonly tcp?: Partial<TcpOptions>;
  /** Discovery's and the transfer room's clock (tests age data without waiting). */
  readonly now?: () => number;
  /** The answer cache's clock, monotonic ms (tests count TTLs down without waiting). */
  readonly cacheNow?: () => number;
  /** For eipdns_build_info and /status (the CLI passes its --version). */
  readonly version?: string;
  /** Admin listener knobs for tests: HTTP limits, the request-timing sample rate, prom-client's default metrics. */
  readonly admin?: { readonly limits?: Partial<AdminLimits>; readonly sampleEvery?: number; readonly defaultMetrics?: boolean };
  /** Transfer timings (tests shorten NOTIFY retries). */
  readonly transfer?: Pick<TransferRoomOptions, 'notifyWaitsMs' | 'secondary'>;
}

export interface BoundAddress {
  readonly host: string;
  readonly port: number;
}

export interface ShutdownResult {
  /** Every query owed an answer got one within the grace period. */
  readonly drained: boolean;
}

/** How long a graceful stop waits for answers still owed (issue 7: docker stop and friends expect ≤ 2 s). */
export const SHUTDOWN_GRACE_MS = 2_000;
/** After the grace period, queries still owed are answered SERVFAIL; this bounds the wait for those sends. */
const FLUSH_MS = 250;

/** reload() after shutdown() or close() began: nothing was changed. */
export class StoppingError extends Error {
  constructor() {
    super('stopping; reload ignored');
    this.name = 'StoppingError';
  }
}

export interface EipdnsServer {
  /** Where it actually listens (ports resolved when the config said 0). */
  readonly addresses: readonly BoundAddress[];
  /** The admin listener, when admin.listen is set. */
  readonly admin: BoundAddress | undefined;
  readonly pipeline: Pipeline;
  readonly readiness: Readiness;
  discovery(): Discovery;
  /** Zone versions, transfers, NOTIFY and TSIG. */
  readonly transfer: TransferRoom;
  /** The current forward chain (replaced when a reload changes upstream settings). */
  chain(): ForwardChain;
  config(): Config;
  /**
   * Applies a validated config; on any failure the running config stays.
   * Counted as a reload. Rejects with StoppingError (not counted) once a
   * stop has begun.
   */
  reload(next: Config): Promise<void>;
  /** SIGHUP: reads config().file again and applies it; a file that does not load counts as a failed reload. */
  reloadFromFile(): Promise<Config>;
  /** The JSON model of GET /status. */
  status(): StatusModel;
  /**
   * Graceful stop (SIGTERM): /ready turns 503 at once; no new query is taken
   * (UDP datagrams are ignored, no TCP connection accepted, bytes after this
   * call ignored); queries already received are answered, forwarded ones
   * included, for at most `graceMs`; what is still owed then gets SERVFAIL;
   * then everything closes.
   */
  shutdown(options?: { readonly graceMs?: number }): Promise<ShutdownResult>;
  /** UDP datagrams ignored because a graceful stop had begun. */
  ignoredWhileStopping(): number;
  /** Immediate stop: pending forwarded queries are abandoned. */
  close(): Promise<void>;
}

export async function startServer(initial: Config, options: ServerOptions): Promise<EipdnsServer> {
  const { logger } = options;
  const now = options.now ?? Date.now;
  let config = initial;
  let loadedAt = now();
  const startedAt = Date.now();
  const version = options.version ?? 'unknown';
  const readiness = new Readiness();
  const reloads: { ok: number; failed: number; lastFailure?: { at: number; error: string } } = { ok: 0, failed: 0 };
  // Poll counters and "when did this record last move" outlive a discovery rebuilt by a reload.
  const discoveryStats = new DiscoveryStats();
  let adminListener: AdminListener | undefined;
  let adminAdmit: Admit | undefined = config.admin && createAdmit(config.admin.allow);

  // The registry reads everything through these closures at scrape time.
  // Loaded only with admin.listen set: prom-client is memory a server
  // without the admin port should not pay (see the README's Memory).
  const admin = config.admin === undefined ? undefined : await loadAdmin();
  const metrics =
    admin === undefined
      ? undefined
      : new admin.Metrics(
          {
            pipeline: () => pipeline.stats,
            chain: () => chain,
            discovery: () => discovery.view(),
            reloads: () => reloads,
            transfer: () => room.stats,
            zoneSerials: () => room.serials(),
            adminRefused: () => adminListener?.refused() ?? 0,
            ready: () => readiness.state().ready,
          },
          {
            version,
            ...(options.admin?.sampleEvery !== undefined ? { sampleEvery: options.admin.sampleEvery } : {}),
            ...(options.admin?.defaultMetrics !== undefined ? { defaultMetrics: options.admin.defaultMetrics } : {}),
          },
        );
  if (metrics !== undefined) discoveryStats.observePollSeconds = metrics.observePollSeconds;

  // Survives reloads: the cache's entries and the budget's window.
  let viewFor: { snapshot?: Snapshot; config?: Config; view: RewriteView } = { view: rewriteViewOf(undefined, 0) };
  const chainState: ChainState = {
    budget: new Budget(config.upstream.maxQps, logger.child({ component: 'budget' })),
    cache: new CacheStore(config.cache),
    cacheNow: options.cacheNow,
    rewriteView: () => {
      // Built once per snapshot (and config): every forwarded reply reads it.
      const snapshot = discovery.current();
      if (viewFor.snapshot !== snapshot || viewFor.config !== config) {
        viewFor = { snapshot, config, view: rewriteView(config, snapshot) };
      }
      return viewFor.view;
    },
    ...(metrics !== undefined ? { upstreamLatency: (server: string) => metrics.upstreamLatency(server) } : {}),
  };
  const chainFor = (cfg: Config): ForwardChain => buildForwardChain(cfg, chainState, logger);
  // A config without EC2-backed records (secondary zones only, say) builds no
  // client and never loads the SDK (src/ec2/README.md).
  const discoveryFor = (cfg: Config, seed?: Snapshot): Discovery =>
    createDiscovery(cfg, logger, { client: options.ec2Client, now: options.now, seed, stats: discoveryStats });
  let discovery = discoveryFor(config);
  let chain = chainFor(config);
  /** Chains replaced by a reload, closed a while later (or at shutdown). */
  const retired = new Set<ForwardChain>();
  const room = new TransferRoom(config, { logger, ...(options.now ? { now: options.now } : {}), ...options.transfer });

  const zonesOf = (cfg: Config, views: readonly ZoneView[]): ZoneAnswers => {
    const zones = new ZoneAnswers(views, cfg.upstream.servers.length > 0);
    zones.warm();
    return zones;
  };
  const zonesFor = (cfg: Config, snapshot: Snapshot): ZoneAnswers => zonesOf(cfg, room.update(snapshot));
  const pipeline = new Pipeline({
    zones: zonesFor(config, discovery.current()),
    admit: createAdmit(config.acl.allow),
    forwarder: chain.forwarder,
    transfer: room,
  });
  const swapZones = (snapshot: Snapshot): void => {
    pipeline.state = { ...pipeline.state, zones: zonesFor(config, snapshot) };
  };
  if (metrics !== undefined) pipeline.setTiming(metrics.requestTiming);
  let unsubscribe = discovery.onChange(swapZones);
  // A secondary zone's new copy (or its expiry) is a new answer set too.
  const unsubscribeRoom = room.onChange(() => swapZones(discovery.current()));

  // Ready once every listener is bound, every zone with EC2 names has data
  // for all of them, and every secondary zone holds a copy.
  for (const l of config.listen) readiness.expect(`dns ${l.host}:${l.port}`, `DNS listener ${showHostPort(l)} not bound yet`);
  readiness.addCheck(() => discovery.waiting());
  readiness.addCheck(() => room.waiting());
  discovery.start();

  const handler = pipeline.handle.bind(pipeline);
  const tcpOptions = { ...DEFAULT_TCP_OPTIONS, ...options.tcp };
  const listeners: Array<UdpListener | TcpListener> = [];
  const addresses: BoundAddress[] = [];
  const closeChains = async (): Promise<void> => {
    await Promise.all([chain, ...retired].map((c) => c.forwarder.close()));
    retired.clear();
  };
  const status = (): StatusModel =>
    buildStatus({
      version,
      startedAt,
      listen: addresses.map(showHostPort),
      config: () => config,
      loadedAt: () => loadedAt,
      reloads: (): ReloadRecord => reloads,
      readiness: () => readiness.state(),
      discovery: () => discovery.view(),
      chain: () => chain,
      zoneSerials: () => room.serials(),
      now,
    });
  try {
    // The admin port first, so /ready can say what the DNS side still waits for.
    if (config.admin !== undefined && admin !== undefined && metrics !== undefined) {
      adminListener = await admin.listenAdmin({
        listen: config.admin.listen,
        admit: () => adminAdmit ?? (() => false),
        allowRefresh: () => config.admin?.allowRefresh === true,
        logger: logger.child({ component: 'admin' }),
        ...(options.admin?.limits !== undefined ? { limits: options.admin.limits } : {}),
        routes: {
          readiness: () => readiness.state(),
          metrics: async () => ({ contentType: metrics.contentType, body: await metrics.scrape() }),
          status,
          refresh: () => refresh(discovery),
        },
      });
      logger.info({ listen: showHostPort(adminListener) }, 'admin listening (http)');
    }
    for (const { host, port } of config.listen) {
      const [udp, tcp] = await bindPair(host, port, (p) => listenUdp(host, p, handler, logger), (p) => listenTcp(host, p, handler, logger, tcpOptions));
      listeners.push(udp, tcp);
      addresses.push({ host, port: udp.port });
      readiness.done(`dns ${host}:${port}`);
    }
  } catch (err) {
    await Promise.all(listeners.map((l) => l.close()));
    await adminListener?.close();
    await discovery.stop();
    await room.close();
    await chain.forwarder.close();
    throw err;
  }
  room.start();
  logger.info({ listen: addresses.map(showHostPort) }, 'listening (udp+tcp)');

  let stopping: Promise<ShutdownResult> | undefined;
  /** Ends a graceful stop's wait at once (close() during shutdown: a second SIGTERM). */
  let cutShort: (() => void) | undefined;
  async function shutdown(graceMs: number): Promise<ShutdownResult> {
    // Lame duck first: a load balancer or kubelet polling /ready stops sending.
    readiness.stop();
    const drained = Promise.all(listeners.map((l) => l.drain())).then(() => true);
    // Nothing will be answered from a new poll now; stop calling EC2.
    const discoveryStopped = discovery.stop();
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<false>((resolve) => {
      timer = setTimeout(resolve, graceMs, false);
      cutShort = () => resolve(false);
    });
    const inTime = await Promise.race([drained, graceOver]);
    clearTimeout(timer);
    if (!inTime) {
      // Closing the chain rejects what is still pending: those clients get
      // SERVFAIL now rather than waiting out their own timeout.
      await closeChains();
      await Promise.race([drained, new Promise((resolve) => (timer = setTimeout(resolve, FLUSH_MS)))]);
      clearTimeout(timer);
    }
    unsubscribe();
    unsubscribeRoom();
    await Promise.all(listeners.map((l) => l.close()));
    await room.close();
    await discoveryStopped;
    await closeChains();
    await adminListener?.close();
    return { drained: inTime };
  }

  const server: EipdnsServer = {
    addresses,
    admin: adminListener && { host: adminListener.host, port: adminListener.port },
    pipeline,
    readiness,
    discovery: () => discovery,
    transfer: room,
    chain: () => chain,
    config: () => config,
    status,
    async reload(next) {
      // A stop has begun: a new chain or discovery built now would outlive it.
      if (stopping !== undefined) throw new StoppingError();
      try {
        await apply(next);
      } catch (err) {
        reloads.failed++;
        reloads.lastFailure = { at: now(), error: (err as Error).message };
        throw err;
      }
      reloads.ok++;
      loadedAt = now();
    },
    async reloadFromFile() {
      if (stopping !== undefined) throw new StoppingError();
      let next: Config;
      try {
        next = loadConfig(config.file);
      } catch (err) {
        reloads.failed++;
        reloads.lastFailure = { at: now(), error: (err as Error).message };
        throw err;
      }
      await server.reload(next);
      return next;
    },
    ignoredWhileStopping: () => listeners.reduce((n, l) => n + ('ignored' in l ? l.ignored() : 0), 0),
    shutdown(opts = {}) {
      stopping ??= shutdown(opts.graceMs ?? SHUTDOWN_GRACE_MS);
      return stopping;
    },
    async close() {
      // During a graceful stop: stop waiting (what is owed gets SERVFAIL), let it finish closing.
      if (stopping !== undefined) {
        cutShort?.();
        await stopping;
        return;
      }
      stopping = (async () => {
        readiness.stop();
        unsubscribe();
        unsubscribeRoom();
        await Promise.all(listeners.map((l) => l.close()));
        await room.close();
        await discovery.stop();
        await closeChains();
        await adminListener?.close();
        return { drained: false };
      })();
      await stopping;
    },
  };
  return server;

  async function apply(next: Config): Promise<void> {
    if (!isDeepStrictEqual(next.listen, config.listen)) {
      throw new Error('listen addresses cannot change on reload; restart eipdns to rebind');
    }
    if (!isDeepStrictEqual(next.admin?.listen, config.admin?.listen)) {
      throw new Error('admin.listen cannot change on reload; restart eipdns to rebind');
    }
    const upstreamChanged = !isDeepStrictEqual(next.upstream, config.upstream) || !isDeepStrictEqual(next.cache, config.cache);
    const discoveryChanged = !isDeepStrictEqual(next.ec2, config.ec2) || !isDeepStrictEqual(next.zones, config.zones);
    // Build everything new before touching the running state (the transfer
    // room's part too: prepare() here, commit() after the swap), so a
    // failure part way leaves the old config serving.
    const nextChain = upstreamChanged ? chainFor(next) : chain;
    let nextDiscovery = discovery;
    try {
      if (discoveryChanged) {
        nextDiscovery = discoveryFor(next, discovery.current());
      }
      // The transfer room's part is built here and made current only after
      // the pipeline swap below: a failure before that leaves it untouched.
      const plan = room.prepare(next);
      const state: PipelineState = {
        zones: zonesOf(next, plan.views(nextDiscovery.current())),
        admit: createAdmit(next.acl.allow),
        forwarder: nextChain.forwarder,
        transfer: room,
      };
      const nextAdminAdmit = next.admin && createAdmit(next.admin.allow);
      const previous = { chain, discovery };
      config = next;
      chain = nextChain;
      adminAdmit = nextAdminAdmit;
      chainState.budget.resize(next.upstream.maxQps);
      if (next.cache.enabled) chainState.cache.resize(next.cache);
      else chainState.cache.clear();
      // Swap before the new discovery starts, so its first snapshot lands
      // on top of this state rather than under it.
      pipeline.state = state;
      room.commit(plan);
      if (discoveryChanged) {
        unsubscribe();
        discovery = nextDiscovery;
        unsubscribe = discovery.onChange(swapZones);
        discovery.start();
        await previous.discovery.stop();
      }
      // Queries already in flight on the old upstream finish or time out first.
      if (upstreamChanged) {
        retired.add(previous.chain);
        setTimeout(() => {
          if (retired.delete(previous.chain)) void previous.chain.forwarder.close();
        }, next.upstream.timeoutMs * 4).unref();
      }
    } catch (err) {
      if (nextChain !== chain) await nextChain.forwarder.close();
      if (nextDiscovery !== discovery) await nextDiscovery.stop();
      throw err;
    }
  }
}

async function loadAdmin(): Promise<{ Metrics: typeof Metrics; listenAdmin: typeof import('./admin/http.js').listenAdmin }> {
  const [{ Metrics: M }, { listenAdmin }] = await Promise.all([import('./admin/metrics.js'), import('./admin/http.js')]);
  return { Metrics: M, listenAdmin };
}

/**
 * The EIP map to rewrite with: none once the data has expired (the EIP may
 * have moved anywhere since), the shortest primary zone TTL as the cap (1 s
 * while discovery is failing, as for zone answers).
 */
function rewriteView(config: Config, snapshot: Snapshot): RewriteView {
  if (snapshot.expired === true) return rewriteViewOf(undefined, 0);
  const ttls = config.zones.filter((z) => z.primaries === undefined).map((z) => z.ttl);
  const ttl = ttls.length > 0 ? Math.min(...ttls) : DEFAULT_TTL;
  return rewriteViewOf(snapshot.elasticIps, snapshot.stale === true ? Math.min(ttl, STALE_TTL) : ttl);
}
