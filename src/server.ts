// Assembles the pipeline from a Config and keeps it current: discovery runs
// beside it and every new snapshot (or reload) swaps in a new immutable state.

import { isDeepStrictEqual } from 'node:util';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { CacheStore } from './cache/store.js';
import { DEFAULT_TTL } from './config/load.js';
import type { Config } from './config/types.js';
import { createAdmit } from './dns/admit.js';
import { Pipeline, type PipelineState } from './dns/pipeline.js';
import { DEFAULT_TCP_OPTIONS, listenTcp, type TcpListener, type TcpOptions } from './dns/tcp.js';
import { listenUdp, type UdpListener } from './dns/udp.js';
import { createDiscovery, type Discovery } from './ec2/discovery.js';
import { Budget } from './forward/budget.js';
import { buildForwardChain, type ChainState, type ForwardChain } from './forward/chain.js';
import type { Logger } from './log.js';
import { rewriteViewOf, type RewriteView } from './forward/rewrite.js';
import { TransferRoom, type TransferRoomOptions } from './transfer/room.js';
import { STALE_TTL, ZoneAnswers } from './zone/answers.js';
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
  /** Transfer timings (tests shorten NOTIFY retries). */
  readonly transfer?: Pick<TransferRoomOptions, 'notifyWaitsMs' | 'secondary'>;
}

export interface BoundAddress {
  readonly host: string;
  readonly port: number;
}

export interface EipdnsServer {
  /** Where it actually listens (ports resolved when the config said 0). */
  readonly addresses: readonly BoundAddress[];
  readonly pipeline: Pipeline;
  discovery(): Discovery;
  /** Zone versions, transfers, NOTIFY and TSIG. */
  readonly transfer: TransferRoom;
  /** The current forward chain (replaced when a reload changes upstream settings). */
  chain(): ForwardChain;
  config(): Config;
  /** Applies a validated config; on any failure the running config stays. */
  reload(next: Config): Promise<void>;
  close(): Promise<void>;
}

export async function startServer(initial: Config, options: ServerOptions): Promise<EipdnsServer> {
  const { logger } = options;
  let config = initial;
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
  };
  const chainFor = (cfg: Config): ForwardChain => buildForwardChain(cfg, chainState, logger);
  // A config without EC2-backed records (secondary zones only, say) builds no
  // client and never loads the SDK (src/ec2/README.md).
  const discoveryFor = (cfg: Config, seed?: Snapshot): Discovery =>
    createDiscovery(cfg, logger, { client: options.ec2Client, now: options.now, seed });
  let discovery = discoveryFor(config);
  let chain = chainFor(config);
  const room = new TransferRoom(config, { logger, ...(options.now ? { now: options.now } : {}), ...options.transfer });

  const zonesFor = (cfg: Config, snapshot: Snapshot): ZoneAnswers => {
    const zones = new ZoneAnswers(room.update(snapshot), cfg.upstream.servers.length > 0);
    zones.warm();
    return zones;
  };
  const pipeline = new Pipeline({
    zones: zonesFor(config, discovery.current()),
    admit: createAdmit(config.acl.allow),
    forwarder: chain.forwarder,
    transfer: room,
  });
  const swapZones = (snapshot: Snapshot): void => {
    pipeline.state = { ...pipeline.state, zones: zonesFor(config, snapshot) };
  };
  let unsubscribe = discovery.onChange(swapZones);
  // A secondary zone's new copy (or its expiry) is a new answer set too.
  const unsubscribeRoom = room.onChange(() => swapZones(discovery.current()));
  discovery.start();

  const handler = pipeline.handle.bind(pipeline);
  const tcpOptions = { ...DEFAULT_TCP_OPTIONS, ...options.tcp };
  const listeners: Array<UdpListener | TcpListener> = [];
  const addresses: BoundAddress[] = [];
  try {
    for (const { host, port } of config.listen) {
      const [udp, tcp] = await bindPair(host, port, (p) => listenUdp(host, p, handler, logger), (p) => listenTcp(host, p, handler, logger, tcpOptions));
      listeners.push(udp, tcp);
      addresses.push({ host, port: udp.port });
    }
  } catch (err) {
    await Promise.all(listeners.map((l) => l.close()));
    await discovery.stop();
    await room.close();
    await chain.forwarder.close();
    throw err;
  }
  room.start();
  logger.info({ listen: addresses.map((a) => `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`) }, 'listening (udp+tcp)');

  return {
    addresses,
    pipeline,
    discovery: () => discovery,
    transfer: room,
    chain: () => chain,
    config: () => config,
    async reload(next) {
      if (!isDeepStrictEqual(next.listen, config.listen)) {
        throw new Error('listen addresses cannot change on reload; restart eipdns to rebind');
      }
      const upstreamChanged = !isDeepStrictEqual(next.upstream, config.upstream) || !isDeepStrictEqual(next.cache, config.cache);
      const discoveryChanged = !isDeepStrictEqual(next.ec2, config.ec2) || !isDeepStrictEqual(next.zones, config.zones);
      // Build everything new before touching the running state, so a failure
      // part way leaves the old config serving.
      const nextChain = upstreamChanged ? chainFor(next) : chain;
      let nextDiscovery = discovery;
      try {
        if (discoveryChanged) {
          nextDiscovery = discoveryFor(next, discovery.current());
        }
        room.configure(next);
        const state: PipelineState = {
          zones: zonesFor(next, nextDiscovery.current()),
          admit: createAdmit(next.acl.allow),
          forwarder: nextChain.forwarder,
          transfer: room,
        };
        const previous = { chain, discovery };
        config = next;
        chain = nextChain;
        chainState.budget.resize(next.upstream.maxQps);
        if (next.cache.enabled) chainState.cache.resize(next.cache);
        else chainState.cache.clear();
        // Swap before the new discovery starts, so its first snapshot lands
        // on top of this state rather than under it.
        pipeline.state = state;
        if (discoveryChanged) {
          unsubscribe();
          discovery = nextDiscovery;
          unsubscribe = discovery.onChange(swapZones);
          discovery.start();
          await previous.discovery.stop();
        }
        // Queries already in flight on the old upstream finish or time out first.
        if (upstreamChanged) setTimeout(() => void previous.chain.forwarder.close(), next.upstream.timeoutMs * 4).unref();
      } catch (err) {
        if (nextChain !== chain) await nextChain.forwarder.close();
        if (nextDiscovery !== discovery) await nextDiscovery.stop();
        throw err;
      }
    },
    async close() {
      unsubscribe();
      unsubscribeRoom();
      await Promise.all(listeners.map((l) => l.close()));
      await room.close();
      await discovery.stop();
      await chain.forwarder.close();
    },
  };
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

/**
 * UDP and TCP on the same port. With port 0 the kernel picks the UDP port and
 * TCP may find it taken, so try a few times.
 */
async function bindPair(
  host: string,
  port: number,
  udp: (port: number) => Promise<UdpListener>,
  tcp: (port: number) => Promise<TcpListener>,
): Promise<[UdpListener, TcpListener]> {
  for (let attempt = 0; ; attempt++) {
    const u = await udp(port);
    try {
      return [u, await tcp(u.port)];
    } catch (err) {
      await u.close();
      if (port !== 0 || attempt >= 5) throw err;
    }
  }
}
