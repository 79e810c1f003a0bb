// The CLI as docker stop, systemd and an operator use it: `node bin/eipdns.js
// serve` in a child process, stopped with a real SIGTERM while a forwarded
// query is in flight, and `eipdns status` asking it over the admin port.
// The upstream stub holds its answers until the test lets them go, so no
// assertion depends on how fast anything runs.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { bin, spawnServe, type ServeProcess } from './helpers/cli.js';
import { buildQuery, decode, sendTcp, sendUdp } from './helpers/dns-client.js';
import { get } from './helpers/http-client.js';
import { inventory } from './helpers/server.js';
import { startUpstreamStub, type UpstreamStub } from './helpers/upstream-stub.js';
import { freePort, run, stopProcess, waitFor } from './interop/tools.js';

const eipdns = (...args: string[]) => run(process.execPath, [bin, ...args], 30_000);

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'eipdns-cli-admin-'));
  dirs.push(dir);
  return dir;
}

interface Running extends ServeProcess {
  readonly port: number;
}

/**
 * Starts `eipdns serve` on `yaml` (DNS on port 0; the bound port is read from
 * the log). `yaml(adminPort)` may use a free port for admin.listen; a port
 * taken between the probe and the bind is retried.
 */
async function serve(dir: string, yaml: (adminPort: number) => string): Promise<Running & { adminPort: number; config: string }> {
  for (let attempt = 0; ; attempt++) {
    const adminPort = await freePort();
    const config = join(dir, 'eipdns.yaml');
    writeFileSync(config, yaml(adminPort));
    const p = spawnServe(config, { cwd: dir });
    try {
      const line = await waitFor('eipdns serve to listen', () => {
        if (p.child.exitCode !== null) throw new Error(`eipdns exited ${p.child.exitCode}:\n${p.output()}`);
        return p.logged('listening (udp+tcp)')[0];
      });
      const port = Number(/:(\d+)$/.exec((line.listen as string[])[0]!)![1]);
      return { ...p, port, adminPort, config };
    } catch (err) {
      await stopProcess(p.child);
      if (!/EADDRINUSE/.test(p.output()) || attempt >= 3) throw err;
    }
  }
}

let upstream: UpstreamStub | undefined;
let running: Running | undefined;
afterEach(async () => {
  if (running) await stopProcess(running.child);
  running = undefined;
  await upstream?.close();
  upstream = undefined;
});

describe('eipdns serve: graceful stop on SIGTERM', () => {
  const yaml = (upstreamPort: number) => (adminPort: number) => `
listen: ["127.0.0.1:0"]
upstream: { servers: ["127.0.0.1:${upstreamPort}"], timeout_ms: 20000 }
zones:
  - name: internal
    records:
      ops: { a: ["10.0.9.9"] }
acl: { allow: ["127.0.0.0/8"] }
admin: { listen: "127.0.0.1:${adminPort}" }
log: { level: info }
`;

  it('answers the forwarded queries in flight (UDP and TCP), turns /ready 503 at once, and exits 0', async () => {
    upstream = await startUpstreamStub({ records: { 'slow.example': ['192.0.2.7'] } });
    upstream.setBehaviour('slow.example', { hold: true });
    const r = await serve(tempDir(), yaml(upstream.port));
    running = r;
    expect((await get(r.adminPort, '/ready')).status).toBe(200);

    const viaUdp = sendUdp(r.port, buildQuery('slow.example', 'A', { id: 11 }), { timeoutMs: 20_000 });
    const viaTcp = sendTcp(r.port, [buildQuery('slow.example', 'A', { id: 12 })], { timeoutMs: 20_000 });
    await waitFor('the upstream to get both queries', () => (upstream!.queries.length === 2 ? true : undefined));

    r.child.kill('SIGTERM');
    await waitFor('"shutting down" in the log', () => (r.logged('shutting down').length === 1 ? true : undefined));
    const lameDuck = await get(r.adminPort, '/ready');
    expect(lameDuck.status).toBe(503);
    expect(lameDuck.body).toBe('not ready:\n- shutting down\n');

    expect(upstream.release('slow.example')).toBe(2);
    const udpAnswer = decode((await viaUdp)!);
    expect([udpAnswer.packet.header.id, udpAnswer.addresses]).toEqual([11, ['192.0.2.7']]);
    const tcpAnswer = decode((await viaTcp)[0]!);
    expect([tcpAnswer.packet.header.id, tcpAnswer.addresses]).toEqual([12, ['192.0.2.7']]);
    expect(await r.exited).toBe(0);
    expect(r.logged('stopped')).toMatchObject([{ drained: true }]);
  });

  it('ignores SIGHUP once stopping: no reload, still exits 0', async () => {
    upstream = await startUpstreamStub({ records: { 'slow.example': ['192.0.2.7'] } });
    upstream.setBehaviour('slow.example', { hold: true });
    const r = await serve(tempDir(), yaml(upstream.port));
    running = r;
    const viaUdp = sendUdp(r.port, buildQuery('slow.example', 'A', { id: 31 }), { timeoutMs: 20_000 });
    await waitFor('the upstream to get the query', () => (upstream!.queries.length === 1 ? true : undefined));

    r.child.kill('SIGTERM');
    await waitFor('"shutting down" in the log', () => (r.logged('shutting down').length === 1 ? true : undefined));
    // A config that would load (and build a new upstream chain) if applied.
    writeFileSync(r.config, yaml(upstream.port)(r.adminPort).replace('timeout_ms: 20000', 'timeout_ms: 19000'));
    r.child.kill('SIGHUP');
    await waitFor('the reload to be ignored', () => (r.logged('stopping; reload ignored').length === 1 ? true : undefined));

    expect(upstream.release('slow.example')).toBe(1);
    expect(decode((await viaUdp)!).addresses).toEqual(['192.0.2.7']);
    expect(await r.exited).toBe(0);
    expect(r.logged('config reloaded')).toEqual([]);
    expect(r.logged('reload failed')).toEqual([]);
  });

  it('exits 0 when an upstream never answers, once the grace period is over, answering SERVFAIL', async () => {
    upstream = await startUpstreamStub();
    upstream.setBehaviour('silent.example', { drop: true });
    const r = await serve(tempDir(), yaml(upstream.port));
    running = r;
    const pending = sendUdp(r.port, buildQuery('silent.example', 'A', { id: 21 }), { timeoutMs: 20_000 });
    await waitFor('the upstream to get the query', () => (upstream!.queries.length === 1 ? true : undefined));

    r.child.kill('SIGTERM');
    // upstream timeout_ms is 20 s: only the 2 s grace bound can end this.
    expect(await r.exited).toBe(0);
    const answer = decode((await pending)!);
    expect([answer.packet.header.id, answer.rcode]).toEqual([21, 2]);
    expect(r.logged('stopped')).toMatchObject([{ drained: false }]);
  });
});

describe('eipdns status', () => {
  const yaml = (adminPort: number) => `
listen: ["127.0.0.1:0"]
upstream: { servers: ["127.0.0.1:9"], timeout_ms: 500 }
ec2:
  poll_interval_ms: 60000
  inventory: inventory.json
zones:
  - name: internal
    records:
      db:  { elastic_ip: { tag: { Role: db } } }
      ops: { a: ["10.0.9.9"] }
acl: { allow: ["127.0.0.0/8"] }
admin: { listen: "127.0.0.1:${adminPort}" }
log: { level: info }
`;
  const db = (privateIp: string, holder: number): string =>
    inventory([
      { publicIp: '198.51.100.9', allocationId: 'eipalloc-0spare00000000001' },
      ...(holder === 0 ? [] : [{ publicIp: '198.51.100.8', allocationId: 'eipalloc-0other0000000001' }]),
      { publicIp: '198.51.100.10', allocationId: 'eipalloc-0db00000000000001', privateIp, tags: { Role: 'db' } },
    ]);

  it('prints each name, where it comes from, and when and where db.internal last moved', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'inventory.json'), db('10.0.1.10', 0));
    const r = await serve(dir, yaml);
    running = r;
    await waitFor('/ready', async () => ((await get(r.adminPort, '/ready')).status === 200 ? true : undefined));

    const before = await eipdns('status', '--config', r.config);
    expect(before.stderr).toBe('');
    expect(before.code).toBe(0);
    expect(before.stdout).toMatch(/^db\.internal +10\.0\.1\.10 +198\.51\.100\.10 eipalloc-0db00000000000001 → i-0{16}1 .* none seen$/m);
    expect(before.stdout).toMatch(/^ops\.internal +10\.0\.9\.9 +static /m);

    // The EIP moves (another instance in the inventory's numbering) and SIGUSR2 polls at once.
    writeFileSync(join(dir, 'inventory.json'), db('10.0.1.20', 1));
    r.child.kill('SIGUSR2');
    await waitFor('the move to show in /status', async () => {
      const s = JSON.parse((await get(r.adminPort, '/status')).body) as { records: Array<{ name: string; lastChange: unknown }> };
      return s.records.find((x) => x.name === 'db.internal')?.lastChange ? true : undefined;
    });
    const after = await eipdns('status', '--config', r.config);
    expect(after.code).toBe(0);
    expect(after.stdout).toMatch(/^db\.internal +10\.0\.1\.20 .*\d\d:\d\d:\d\dZ \(\d+s ago\): 10\.0\.1\.10 \(i-0{16}1\) → 10\.0\.1\.20 \(i-0{16}2\)$/m);

    const json = await eipdns('status', '--config', r.config, '--json');
    expect(json.code).toBe(0);
    const model = JSON.parse(json.stdout) as { records: Array<{ name: string; addresses: string[] }>; config: { file: string } };
    expect(model.records.find((x) => x.name === 'db.internal')?.addresses).toEqual(['10.0.1.20']);
    expect(model.config.file).toBe(r.config);
  });

  it('exits 2 for a config without admin.listen and 1 when nothing answers on it', async () => {
    const dir = tempDir();
    const port = await freePort();
    writeFileSync(join(dir, 'inventory.json'), db('10.0.1.10', 0));
    const none = join(dir, 'none.yaml');
    writeFileSync(none, yaml(port).replace(/^admin:.*$/m, ''));
    const r2 = await eipdns('status', '--config', none);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/sets no admin\.listen/);

    const down = join(dir, 'down.yaml');
    writeFileSync(down, yaml(port));
    const r1 = await eipdns('status', '--config', down);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toContain(`cannot reach http://127.0.0.1:${port}/status: ECONNREFUSED`);
  });
});
