// `eipdns probe` against real sockets: the real server, a dead port, a silent
// one and one that answers wrongly; in-process and through the bundled CLI
// (the container's HEALTHCHECK runs exactly that).

import { createSocket, type Socket } from 'node:dgram';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { buildProbeQuery, checkReply, probe, probeTarget, runProbe } from '../src/probe.js';
import { inventory, inventoryConfig, startTestServer, type TestServer } from './helpers/server.js';
import { freePort, run } from './interop/tools.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'eipdns.js');

const INVENTORY = inventory([{ publicIp: '198.51.100.10', allocationId: 'eipalloc-0db00000000000001', privateIp: '10.0.1.10', tags: { Role: 'db' } }]);

let srv: TestServer | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  await srv?.close();
  srv = undefined;
  for (const s of sockets.splice(0)) s.close();
});

async function startServerOn(port: number, allow?: readonly string[]): Promise<TestServer> {
  return startTestServer(
    inventoryConfig({ listen: `127.0.0.1:${port}`, upstream: 9, records: ['db: { elastic_ip: { tag: { Role: db } } }'], ...(allow ? { allow } : {}) }),
    { files: { 'inventory.json': INVENTORY } },
  );
}

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return {
    stream: new Writable({
      write(chunk: Buffer | string, _encoding, callback) {
        chunks.push(String(chunk));
        callback();
      },
    }),
    text: () => chunks.join(''),
  };
}

/** A UDP socket on loopback that hands every datagram to `onQuery`. */
async function udpPeer(onQuery: (msg: Buffer, reply: (bytes: Buffer) => void) => void): Promise<number> {
  const socket = createSocket('udp4');
  sockets.push(socket);
  socket.on('message', (msg, from) => onQuery(msg, (bytes) => socket.send(bytes, from.port, from.address)));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return socket.address().port;
}

describe('probe against the real server', () => {
  it("passes on the server's answer to the first zone's SOA (config's listen address)", async () => {
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      try {
        srv = await startServerOn(port);
        break;
      } catch (err) {
        if (attempt >= 3) throw err;
      }
    }
    const out = sink();
    const err = sink();
    const code = await runProbe(srv.server.config(), {}, { out: out.stream, err: err.stream });
    expect(err.text()).toBe('');
    expect(code).toBe(0);
    expect(out.text()).toMatch(new RegExp(`^127\\.0\\.0\\.1:${srv.port}: internal SOA: NOERROR in [\\d.]+ ms\\n$`));
  });

  it('passes on REFUSED too: the server answered (an ACL without loopback)', async () => {
    srv = await startTestServer(
      inventoryConfig({ upstream: 9, records: ['db: { elastic_ip: { tag: { Role: db } } }'], allow: ['10.0.0.0/8'] }),
      { files: { 'inventory.json': INVENTORY } },
    );
    const result = await probe({ host: '127.0.0.1', port: srv.port }, 'internal');
    expect(result).toMatchObject({ ok: true, rcode: 5 });
  });

  it('fails on a dead port', async () => {
    const port = await freePort();
    const err = sink();
    const config = parseConfig(`listen: ["127.0.0.1:${port}"]\nzones: [{ name: internal, records: { ops: { a: ["10.0.9.9"] } } }]\n`, '/test/eipdns.yaml');
    const code = await runProbe(config, {}, { out: sink().stream, err: err.stream });
    expect(code).toBe(1);
    expect(err.text()).toMatch(new RegExp(`^eipdns probe: 127\\.0\\.0\\.1:${port}: internal SOA: .*ECONNREFUSED`));
  });

  it('fails when nothing answers, and when the only reply is not an answer to its query', async () => {
    const silent = await udpPeer(() => undefined);
    expect(await probe({ host: '127.0.0.1', port: silent }, 'internal', 300)).toEqual({ ok: false, reason: 'no answer within 300 ms' });

    // Echoes the query as is: QR clear, so not a response.
    const echo = await udpPeer((msg, reply) => reply(msg));
    expect(await probe({ host: '127.0.0.1', port: echo }, 'internal', 300)).toEqual({ ok: false, reason: 'reply is not a response (QR clear)' });

    // A response with another ID.
    const wrongId = await udpPeer((msg, reply) => {
      const r = Buffer.from(msg);
      r.writeUInt16BE((msg.readUInt16BE(0) + 1) & 0xffff, 0);
      r.writeUInt16BE(0x8400, 2);
      reply(r);
    });
    expect(await probe({ host: '127.0.0.1', port: wrongId }, 'internal', 300)).toEqual({ ok: false, reason: 'reply has another ID' });
  });
});

describe('probe: its query and checks', () => {
  it('asks SOA IN for the name, no recursion, and accepts only the echo of that question', () => {
    const q = buildProbeQuery(0xbeef, 'internal');
    expect([...q]).toEqual([0xbe, 0xef, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 8, ...Buffer.from('internal'), 0, 0, 6, 0, 1]);
    const answer = Buffer.from(q);
    answer.writeUInt16BE(0x8400, 2);
    expect(checkReply(q, answer)).toBeUndefined();
    const upper = Buffer.from(answer);
    upper.write('INTERNAL', 13, 'latin1');
    expect(checkReply(q, upper)).toBeUndefined();
    const other = Buffer.from(answer);
    other.write('externa', 13, 'latin1');
    expect(checkReply(q, other)).toBe('reply echoes another question');
    expect(checkReply(q, answer.subarray(0, 11))).toBe('11-byte reply, shorter than a DNS header');
  });

  it('probes loopback for a wildcard listen address, and --server when given', () => {
    const config = (listen: string) =>
      parseConfig(`listen: ["${listen}"]\nzones: [{ name: internal, records: { ops: { a: ["10.0.9.9"] } } }]\n`, '/test/eipdns.yaml');
    expect(probeTarget(config('0.0.0.0:53'))).toEqual({ host: '127.0.0.1', port: 53 });
    expect(probeTarget(config('[::]:5353'))).toEqual({ host: '::1', port: 5353 });
    expect(probeTarget(config('10.0.1.5:53'))).toEqual({ host: '10.0.1.5', port: 53 });
    expect(probeTarget(config('0.0.0.0:53'), '127.0.0.2')).toEqual({ host: '127.0.0.2', port: 53 });
    expect(probeTarget(config('0.0.0.0:53'), '[::1]:5300')).toEqual({ host: '::1', port: 5300 });
    expect(() => probeTarget(config('0.0.0.0:53'), 'localhost:53')).toThrow(/--server: "localhost" is a hostname/);
  });
});

describe('eipdns probe (the bundled CLI, as the HEALTHCHECK runs it)', () => {
  it('exits 0 against the running server and 1 against a dead port; 2 for a bad --server', async () => {
    srv = await startTestServer(inventoryConfig({ upstream: 9, records: ['db: { elastic_ip: { tag: { Role: db } } }'] }), {
      files: { 'inventory.json': INVENTORY },
    });
    const config = join(srv.dir, 'eipdns.yaml');
    const alive = await run(process.execPath, [bin, 'probe', '--config', config, '--server', `127.0.0.1:${srv.port}`]);
    expect(alive).toMatchObject({ code: 0, stderr: '' });
    expect(alive.stdout).toMatch(/: internal SOA: NOERROR in /);

    const dead = await freePort();
    const down = await run(process.execPath, [bin, 'probe', '--config', config, '--server', `127.0.0.1:${dead}`]);
    expect(down.code).toBe(1);
    expect(down.stdout).toBe('');
    expect(down.stderr).toMatch(/ECONNREFUSED|no answer/);

    const bad = await run(process.execPath, [bin, 'probe', '--config', config, '--server', 'dns.internal']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--server: "dns\.internal" is a hostname/);
  });
});
