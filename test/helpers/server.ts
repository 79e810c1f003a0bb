// Starts the real eipdns server in-process on ephemeral ports from a YAML
// config written to a temp dir, loaded through the real config loader.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { loadConfig } from '../../src/config/load.js';
import type { AdminConfig, Config } from '../../src/config/types.js';
import { silentLogger, type Logger } from '../../src/log.js';
import type { TcpOptions } from '../../src/dns/tcp.js';
import { startServer, type EipdnsServer, type ServerOptions } from '../../src/server.js';

export interface TestServer {
  readonly server: EipdnsServer;
  readonly port: number;
  /** The admin listener's port (throws when the test asked for none). */
  readonly adminPort: number;
  readonly dir: string;
  /** Writes a file next to the config (e.g. the inventory). */
  write(name: string, content: string): string;
  close(): Promise<void>;
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'eipdns-test-'));
}

export interface TestServerOptions {
  files?: Record<string, string>;
  ec2Client?: EC2Client;
  logger?: Logger;
  dir?: string;
  /** Discovery's clock. */
  now?: () => number;
  /** The answer cache's clock (ms). */
  cacheNow?: () => number;
  tcp?: Partial<TcpOptions>;
  /**
   * Adjusts the loaded config before the server starts, for settings the
   * YAML cannot express yet (or that a test wants without spelling YAML).
   */
  configure?: (config: Config) => Config;
  /**
   * Turns on the admin listener (127.0.0.1, an ephemeral port, loopback
   * allowed, refresh off, unless overridden) without spelling it in the YAML.
   */
  admin?: Partial<AdminConfig> | true;
  /** Admin knobs, the version and transfer timings, passed to startServer. */
  server?: Pick<ServerOptions, 'admin' | 'version' | 'transfer'>;
}

export async function startTestServer(yaml: string, opts: TestServerOptions = {}): Promise<TestServer> {
  const dir = opts.dir ?? tempDir();
  const write = (name: string, content: string): string => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };
  for (const [name, content] of Object.entries(opts.files ?? {})) write(name, content);
  const loaded = loadConfig(write('eipdns.yaml', yaml));
  const configured = opts.configure ? opts.configure(loaded) : loaded;
  const config: Config =
    opts.admin === undefined
      ? configured
      : {
          ...configured,
          admin: {
            listen: { host: '127.0.0.1', port: 0 },
            allow: ['127.0.0.0/8', '::1/128'],
            allowRefresh: false,
            ...(opts.admin === true ? {} : opts.admin),
          },
        };
  const server = await startServer(config, {
    logger: opts.logger ?? silentLogger,
    ec2Client: opts.ec2Client,
    now: opts.now,
    cacheNow: opts.cacheNow,
    tcp: opts.tcp,
    ...opts.server,
  });
  return {
    server,
    port: server.addresses[0]!.port,
    get adminPort(): number {
      if (server.admin === undefined) throw new Error('this test server has no admin listener');
      return server.admin.port;
    },
    dir,
    write,
    close: async () => {
      await server.close();
      if (opts.dir === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An inventory in `aws ec2 describe-addresses --output json` form. */
export function inventory(addresses: ReadonlyArray<{ publicIp: string; allocationId: string; privateIp?: string; tags?: Record<string, string> }>): string {
  return JSON.stringify(
    {
      Addresses: addresses.map((a, i) => ({
        PublicIp: a.publicIp,
        AllocationId: a.allocationId,
        Domain: 'vpc',
        ...(a.privateIp
          ? {
              AssociationId: `eipassoc-${i.toString(16).padStart(17, '0')}`,
              InstanceId: `i-${i.toString(16).padStart(17, '0')}`,
              NetworkInterfaceId: `eni-${i.toString(16).padStart(17, '0')}`,
              NetworkInterfaceOwnerId: '123456789012',
              PrivateIpAddress: a.privateIp,
            }
          : {}),
        Tags: Object.entries(a.tags ?? {}).map(([Key, Value]) => ({ Key, Value })),
      })),
    },
    null,
    2,
  );
}

/**
 * The config most tests need: one zone "internal" whose addresses come from
 * inventory.json beside the config. `records` are the YAML entries under
 * `records:`, e.g. `db: { elastic_ip: { tag: { Role: db } } }`.
 */
export function inventoryConfig(o: {
  upstream: number | string;
  records: readonly string[];
  listen?: string;
  allow?: readonly string[];
  timeoutMs?: number;
  /** upstream.max_qps; unset: the default. */
  maxQps?: number;
  ttl?: number;
  logLevel?: string;
  /** More top-level YAML, appended as is (e.g. "cache: false"). */
  extra?: string;
}): string {
  const upstream = typeof o.upstream === 'number' ? `127.0.0.1:${o.upstream}` : o.upstream;
  return `
listen: ["${o.listen ?? '127.0.0.1:0'}"]
upstream:
  servers: ["${upstream}"]
  timeout_ms: ${o.timeoutMs ?? 300}${o.maxQps === undefined ? '' : `\n  max_qps: ${o.maxQps}`}
ec2:
  poll_interval_ms: 60000
  inventory: inventory.json
zones:
  - name: internal
    ttl: ${o.ttl ?? 5}
    records:
${o.records.map((r) => `      ${r}`).join('\n')}
acl:
  allow: [${(o.allow ?? ['127.0.0.0/8']).map((c) => `"${c}"`).join(', ')}]
log:
  level: ${o.logLevel ?? 'warn'}
${o.extra ?? ''}`;
}
