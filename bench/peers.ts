// The servers the bench drives: eipdns (the bundle, run as `eipdns serve`,
// as deployed) and its peers dnsmasq and Unbound, plus NSD as an
// authoritative upstream that counts what reaches it. Each runs on loopback
// from its own config in a temp dir, pinned with taskset, and is checked to
// answer before anything is measured.
//
// (test/interop/peers.ts on the transfer branch runs knotd/named/nsd/unbound
// for the interop tests, unpinned and as zone-transfer peers; these are
// the bench's own, small on purpose, to be folded together later.)

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { query } from '../test/helpers/dns-client.js';
import { inventory, inventoryConfig } from '../test/helpers/server.js';
import { freePort, isolatedDnsmasqArgs } from '../test/interop/tools.js';
import { exited, ROOT, runTool, sleep, start, tool, type Started } from './procs.js';

export const PRIVATE_NAME = 'db.internal';
export const PRIVATE_IP = '10.0.1.10';
/** The forwarded name, answered by the shared upstream dnsmasq. */
export const FORWARDED_NAME = 'www.fwd.test';
export const FORWARDED_IP = '192.0.2.1';
/** TTL of the upstream's answers: long enough that a cache holds them for the whole bench. */
export const FORWARDED_TTL = 3600;

export interface Server {
  /** What the tables call it: eipdns, dnsmasq, unbound, ... */
  readonly label: string;
  readonly port: number;
  readonly started: Started;
}

/** Polls with real queries until `name A` is answered `expected`; throws with the server's output otherwise. */
export async function waitForAnswer(server: Omit<Server, 'label'> & { label: string }, name: string, expected: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  let last = 'no reply';
  while (Date.now() < deadline && !exited(server.started)) {
    try {
      const a = await query(server.port, name, 'A', { timeoutMs: 300 });
      if (a.addresses[0] === expected) return;
      last = `rcode ${a.rcode}, ${a.addresses.join(' ') || 'no A'}`;
    } catch {
      last = 'no reply';
    }
    await sleep(100);
  }
  throw new Error(`${server.label} on port ${server.port} did not answer ${name} A ${expected} (last: ${last})\n${server.started.output()}`);
}

// ---- dnsmasq ------------------------------------------------------------------

export async function startDnsmasq(label: string, id: string, dir: string, cpu: number | undefined, extra: readonly string[], probe: readonly [string, string]): Promise<Server> {
  const port = await freePort();
  const args = [...isolatedDnsmasqArgs(port, join(dir, `${id}.pid`)), ...extra];
  const server = { label, port, started: start(tool('dnsmasq'), args, `${label} (${id})`, { cpu }) };
  await waitForAnswer(server, probe[0], probe[1]);
  return server;
}

// ---- Unbound ------------------------------------------------------------------

export interface UnboundOptions {
  /** local-data records ("db.internal. 5 IN A 10.0.1.10"), each name's zone made a static local zone. */
  readonly localData: readonly { zone: string; record: string }[];
  /** forward-zone: this zone to 127.0.0.1@port (its cache on, as by default). */
  readonly forward?: { zone: string; port: number };
}

export async function startUnbound(label: string, dir: string, cpu: number | undefined, o: UnboundOptions, probe: readonly [string, string]): Promise<Server> {
  const port = await freePort();
  const zones = [...new Set(o.localData.map((d) => d.zone))];
  const conf = [
    'server:',
    `  interface: 127.0.0.1@${port}`,
    `  port: ${port}`,
    '  do-daemonize: no',
    '  username: ""',
    '  chroot: ""',
    `  directory: "${dir}"`,
    `  pidfile: "${join(dir, 'unbound.pid')}"`,
    '  use-syslog: no',
    '  logfile: ""',
    '  verbosity: 0',
    // One thread on one CPU, as dnsmasq and eipdns have.
    '  num-threads: 1',
    '  access-control: 127.0.0.0/8 allow',
    '  do-ip6: no',
    // No DNSSEC validation (no trust anchor to fetch): a forwarder's job only.
    '  module-config: "iterator"',
    '  do-not-query-localhost: no',
    // Unbound answers RFC 6761 names like test. itself; let fwd.test. be forwarded.
    ...(o.forward ? [`  local-zone: "${o.forward.zone.split('.').pop()}." nodefault`] : []),
    ...zones.map((z) => `  local-zone: "${z}." static`),
    ...o.localData.map((d) => `  local-data: "${d.record}"`),
    ...(o.forward ? ['forward-zone:', `  name: "${o.forward.zone}."`, `  forward-addr: 127.0.0.1@${o.forward.port}`] : []),
    'remote-control:',
    '  control-enable: no',
  ];
  const file = join(dir, 'unbound.conf');
  writeFileSync(file, `${conf.join('\n')}\n`);
  const server = { label, port, started: start(tool('unbound'), ['-d', '-c', file], label, { cpu }) };
  await waitForAnswer(server, probe[0], probe[1]);
  return server;
}

// ---- NSD: an authoritative upstream that counts ---------------------------------

export interface Nsd extends Server {
  /** Queries NSD has received since it started (`nsd-control stats_noreset`, num.queries). */
  queries(): Promise<number>;
}

/** NSD serving one zone from `zoneText`, with a control socket for its statistics. */
export async function startNsd(dir: string, cpu: number | undefined, zone: string, zoneText: string, probe: readonly [string, string]): Promise<Nsd> {
  const port = await freePort();
  const nsdDir = join(dir, 'nsd');
  mkdirSync(nsdDir, { recursive: true });
  writeFileSync(join(nsdDir, `${zone}.zone`), zoneText);
  const conf = [
    'server:',
    `  ip-address: 127.0.0.1@${port}`,
    `  port: ${port}`,
    '  username: ""',
    '  chroot: ""',
    `  zonesdir: "${nsdDir}"`,
    `  pidfile: "${join(nsdDir, 'nsd.pid')}"`,
    `  xfrdfile: "${join(nsdDir, 'xfrd.state')}"`,
    `  xfrdir: "${nsdDir}"`,
    `  zonelistfile: "${join(nsdDir, 'zone.list')}"`,
    '  database: ""',
    '  logfile: ""',
    '  verbosity: 0',
    '  server-count: 1',
    'remote-control:',
    '  control-enable: yes',
    // A unix socket: no keys or certificates, and nothing on the network.
    `  control-interface: ${join(nsdDir, 'control.sock')}`,
    'zone:',
    `  name: ${zone}`,
    `  zonefile: "${zone}.zone"`,
  ];
  const file = join(nsdDir, 'nsd.conf');
  writeFileSync(file, `${conf.join('\n')}\n`);
  const server = { label: 'nsd', port, started: start(tool('nsd'), ['-d', '-c', file], 'nsd', { cpu }) };
  await waitForAnswer(server, probe[0], probe[1]);
  return {
    ...server,
    async queries() {
      const text = await runTool(tool('nsd-control'), ['-c', file, 'stats_noreset'], 'nsd-control stats_noreset');
      const m = /^num\.queries=(\d+)$/m.exec(text);
      if (m === null) throw new Error(`nsd-control printed no num.queries:\n${text}`);
      return Number(m[1]);
    },
  };
}

// ---- eipdns -------------------------------------------------------------------

export interface EipdnsOptions {
  readonly label: string;
  /** A directory of its own (config and inventory are written there). */
  readonly dir: string;
  readonly cpu: number | undefined;
  readonly upstreamPort: number;
  /** false: `cache: false`; default: the cache with its default settings. */
  readonly cache?: boolean;
  /** true: the cache with prefetch on (cache.prefetch: true; off by default). */
  readonly prefetch?: boolean;
  /** upstream.max_qps; default: the default (900). */
  readonly maxQps?: number;
  /** Turn the admin listener on (admin.listen on a free loopback port). */
  readonly admin?: boolean;
  readonly nodeFlags?: readonly string[];
  /** Another checkout to run (its bin/eipdns.js, built), e.g. an older commit; default this one. */
  readonly root?: string;
}

export interface Eipdns extends Server {
  readonly adminPort?: number;
  /** eipdns's log lines about the upstream budget (at info: exhausted, and available again with the count refused). */
  budgetLog(): readonly string[];
}

export async function startEipdns(o: EipdnsOptions): Promise<Eipdns> {
  const port = await freePort();
  const adminPort = o.admin ? await freePort() : undefined;
  writeFileSync(
    join(o.dir, 'inventory.json'),
    inventory([{ publicIp: '198.51.100.10', allocationId: 'eipalloc-0db00000000000001', privateIp: PRIVATE_IP, tags: { Role: 'db' } }]),
  );
  const extra = [...(o.cache === false ? ['cache: false'] : o.prefetch === true ? ['cache:', '  prefetch: true'] : []), ...(adminPort !== undefined ? ['admin:', `  listen: "127.0.0.1:${adminPort}"`] : [])];
  const config = join(o.dir, 'eipdns.yaml');
  writeFileSync(
    config,
    inventoryConfig({
      listen: `127.0.0.1:${port}`,
      upstream: o.upstreamPort,
      timeoutMs: 1000,
      records: ['db: { elastic_ip: { tag: { Role: db } } }'],
      ...(o.maxQps !== undefined ? { maxQps: o.maxQps } : {}),
      // info: the budget logs when it runs out and when it recovers (with the count refused); nothing per query.
      logLevel: 'info',
      extra: extra.map((l) => `${l}\n`).join(''),
    }),
  );
  const root = o.root ?? ROOT;
  const started = start(process.execPath, [...(o.nodeFlags ?? []), join(root, 'bin', 'eipdns.js'), 'serve', '--config', config], o.label, {
    cpu: o.cpu,
    cwd: root,
    keep: /upstream query budget/,
  });
  const server = { label: o.label, port, started };
  await waitForAnswer(server, PRIVATE_NAME, PRIVATE_IP);
  return { ...server, ...(adminPort !== undefined ? { adminPort } : {}), budgetLog: () => started.kept() };
}
