// Real authoritative servers as zone transfer peers of eipdns: Knot (knotd),
// BIND (named), NSD and Unbound (auth-zone), each an unprivileged-port
// process on loopback with its own temp config and state directory, in the
// foreground, removed when stopped. Built on tools.ts (track, stopProcess,
// waitFor, freePort): a process left behind is killed when the test process
// exits.
//
// Each runs as a secondary of an eipdns primary (`primary` set), or (Knot
// only) as a primary serving a zone file and notifying eipdns.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answersDns, freePort, sleep, stopProcess, track, waitFor } from './tools.js';

export type PeerKind = 'knotd' | 'named' | 'nsd' | 'unbound';

export interface PeerKey {
  readonly name: string;
  readonly secret: string;
}

export interface PeerSpec {
  readonly zone: string;
  /** Secondary of this primary (an eipdns) on 127.0.0.1. */
  readonly primary?: { readonly port: number };
  /** Primary serving this zone file text (Knot only), notifying `notify`. */
  readonly zoneFile?: string;
  readonly notify?: { readonly port: number };
  /** TSIG for transfers and NOTIFY (Unbound has none). */
  readonly key?: PeerKey;
  /** Knot only: refresh timers floor (seconds), so tests never wait for them. */
  readonly refreshMin?: number;
  /** Listen here (chosen beforehand, e.g. to be a NOTIFY target); default a free port. */
  readonly port?: number;
}

export interface Peer {
  readonly kind: PeerKind;
  readonly port: number;
  readonly dir: string;
  readonly pid: number;
  /** Everything the server logged (stderr and its log file). */
  log(): string;
  /** Rewrites the zone file (primary mode) and tells the server to reload it. */
  reloadZone?(text: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startPeer(kind: PeerKind, binary: string, spec: PeerSpec): Promise<Peer> {
  if (spec.port !== undefined) return startOn(kind, binary, spec.port, spec);
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      return await startOn(kind, binary, port, spec);
    } catch (err) {
      if (!/in use|bind|could not listen/i.test((err as Error).message) || attempt >= 3) throw err;
    }
  }
}

async function startOn(kind: PeerKind, binary: string, port: number, spec: PeerSpec): Promise<Peer> {
  const dir = mkdtempSync(join(tmpdir(), `eipdns-${kind}-`));
  const logFile = join(dir, 'server.log');
  writeFileSync(logFile, '');
  const { args, reload } = configure(kind, dir, port, logFile, spec);
  const child = track(spawn(binary, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  const collect = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const log = (): string => {
    let file = '';
    try {
      file = readFileSync(logFile, 'utf8');
    } catch {
      // not written yet
    }
    return `${output}${file}`;
  };
  const stop = async (): Promise<void> => {
    await stopProcess(child, 5000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(`${kind} on 127.0.0.1:${port}`, async () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${kind} exited (${child.exitCode ?? child.signalCode}):\n${log()}`);
      return (await answersDns(port)) ? true : undefined;
    }, 20_000);
  } catch (err) {
    await sleep(100);
    const text = log();
    await stop();
    throw new Error(`${(err as Error).message}\n${text}`);
  }
  return {
    kind,
    port,
    dir,
    pid: child.pid!,
    log,
    ...(reload !== undefined ? { reloadZone: (text: string) => reload(text) } : {}),
    stop,
  };
}

interface Configured {
  readonly args: string[];
  readonly reload?: (zoneText: string) => Promise<void>;
}

function configure(kind: PeerKind, dir: string, port: number, logFile: string, spec: PeerSpec): Configured {
  switch (kind) {
    case 'knotd':
      return knot(dir, port, spec);
    case 'named':
      return named(dir, port, spec);
    case 'nsd':
      return nsd(dir, port, logFile, spec);
    case 'unbound':
      return unbound(dir, port, logFile, spec);
  }
}

// ---- Knot -------------------------------------------------------------------------

function knot(dir: string, port: number, spec: PeerSpec): Configured {
  mkdirSync(join(dir, 'db'));
  mkdirSync(join(dir, 'zones'));
  const key = spec.key;
  const lines = [
    'server:',
    `    rundir: "${dir}"`,
    `    listen: 127.0.0.1@${port}`,
    'log:',
    '  - target: stderr',
    '    any: debug',
    'database:',
    `    storage: "${join(dir, 'db')}"`,
  ];
  if (key) lines.push('key:', `  - id: ${key.name}`, '    algorithm: hmac-sha256', `    secret: ${key.secret}`);
  const remotes: string[] = [];
  if (spec.primary) remotes.push('  - id: eipdns_primary', `    address: 127.0.0.1@${spec.primary.port}`, ...(key ? [`    key: ${key.name}`] : []));
  if (spec.notify) remotes.push('  - id: eipdns_secondary', `    address: 127.0.0.1@${spec.notify.port}`, ...(key ? [`    key: ${key.name}`] : []));
  if (remotes.length > 0) lines.push('remote:', ...remotes);
  lines.push('acl:');
  lines.push('  - id: from_eipdns', '    address: 127.0.0.1', ...(key ? [`    key: ${key.name}`] : []), '    action: [notify, transfer]');
  lines.push('template:', '  - id: default', `    storage: "${join(dir, 'zones')}"`, '    zonefile-sync: -1');
  const zoneFile = join(dir, 'zones', `${spec.zone}.zone`);
  lines.push('zone:', `  - domain: ${spec.zone}`, `    file: "${zoneFile}"`, '    acl: from_eipdns');
  if (spec.primary) {
    lines.push('    master: eipdns_primary', '    zonefile-load: none', '    journal-content: all');
    if (spec.refreshMin !== undefined) lines.push(`    refresh-min-interval: ${spec.refreshMin}`, `    refresh-max-interval: ${spec.refreshMin}`);
  }
  if (spec.zoneFile !== undefined) {
    writeFileSync(zoneFile, spec.zoneFile);
    // Differences between zone file versions become IXFR history.
    lines.push('    zonefile-load: difference', '    journal-content: changes');
    if (spec.notify) lines.push('    notify: eipdns_secondary');
  }
  const conf = join(dir, 'knot.conf');
  writeFileSync(conf, `${lines.join('\n')}\n`);
  const knotc = (...args: string[]): Promise<void> =>
    new Promise((resolve, reject) => {
      const c = spawn('knotc', ['-c', conf, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      c.stdout!.on('data', (d: Buffer) => (text += d.toString()));
      c.stderr!.on('data', (d: Buffer) => (text += d.toString()));
      c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`knotc ${args.join(' ')}: ${text}`))));
    });
  return {
    args: ['-c', conf],
    ...(spec.zoneFile !== undefined
      ? {
          reload: async (text: string) => {
            writeFileSync(zoneFile, text);
            await knotc('zone-reload', spec.zone);
          },
        }
      : {}),
  };
}

// ---- BIND -------------------------------------------------------------------------

function named(dir: string, port: number, spec: PeerSpec): Configured {
  const key = spec.key;
  const conf = [
    'options {',
    `  directory "${dir}";`,
    `  pid-file "${join(dir, 'named.pid')}";`,
    `  session-keyfile "${join(dir, 'session.key')}";`,
    `  managed-keys-directory "${dir}";`,
    `  listen-on port ${port} { 127.0.0.1; };`,
    '  listen-on-v6 { none; };',
    '  recursion no;',
    '  notify no;',
    '  dnssec-validation no;',
    '  minimal-responses yes;',
    '};',
    'controls { };',
    ...(key ? [`key "${key.name}" { algorithm hmac-sha256; secret "${key.secret}"; };`] : []),
    'zone "' + spec.zone + '" {',
    '  type secondary;',
    `  primaries { 127.0.0.1 port ${spec.primary!.port}${key ? ` key "${key.name}"` : ''}; };`,
    `  file "${spec.zone}.db";`,
    '  allow-notify { 127.0.0.1; };',
    '};',
  ];
  const file = join(dir, 'named.conf');
  writeFileSync(file, `${conf.join('\n')}\n`);
  // -g: foreground, everything logged to stderr.
  return { args: ['-g', '-c', file, '-n', '1'] };
}

// ---- NSD --------------------------------------------------------------------------

function nsd(dir: string, port: number, logFile: string, spec: PeerSpec): Configured {
  const key = spec.key;
  const conf = [
    'server:',
    `  ip-address: 127.0.0.1@${port}`,
    `  port: ${port}`,
    '  username: ""',
    '  chroot: ""',
    `  zonesdir: "${dir}"`,
    `  pidfile: "${join(dir, 'nsd.pid')}"`,
    `  xfrdfile: "${join(dir, 'xfrd.state')}"`,
    `  xfrdir: "${dir}"`,
    `  zonelistfile: "${join(dir, 'zone.list')}"`,
    `  database: ""`,
    `  logfile: "${logFile}"`,
    '  verbosity: 2',
    '  server-count: 1',
    'remote-control:',
    '  control-enable: no',
    ...(key ? ['key:', `  name: ${key.name}`, '  algorithm: hmac-sha256', `  secret: "${key.secret}"`] : []),
    'zone:',
    `  name: ${spec.zone}`,
    `  zonefile: "${spec.zone}.zone"`,
    `  allow-notify: 127.0.0.1 ${key ? key.name : 'NOKEY'}`,
    `  request-xfr: 127.0.0.1@${spec.primary!.port} ${key ? key.name : 'NOKEY'}`,
  ];
  const file = join(dir, 'nsd.conf');
  writeFileSync(file, `${conf.join('\n')}\n`);
  return { args: ['-d', '-c', file] };
}

// ---- Unbound ----------------------------------------------------------------------

function unbound(dir: string, port: number, logFile: string, spec: PeerSpec): Configured {
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
    `  logfile: "${logFile}"`,
    '  verbosity: 2',
    '  access-control: 127.0.0.0/8 allow',
    '  do-ip6: no',
    // Unbound answers `test.` and other RFC 6761 names from built-in local
    // zones (docs/dns2-and-speed.md): switch that off for the zone's TLD.
    `  local-zone: "${spec.zone.split('.').pop()}." nodefault`,
    'auth-zone:',
    `  name: "${spec.zone}"`,
    `  primary: 127.0.0.1@${spec.primary!.port}`,
    '  allow-notify: 127.0.0.1',
    '  fallback-enabled: no',
    '  for-downstream: yes',
    '  for-upstream: no',
    `  zonefile: "${join(dir, `${spec.zone}.zone`)}"`,
    'remote-control:',
    '  control-enable: no',
  ];
  const file = join(dir, 'unbound.conf');
  writeFileSync(file, `${conf.join('\n')}\n`);
  return { args: ['-d', '-c', file] };
}
