// Graceful stop (issue 7 §5) in process, over real sockets: what was received
// before the stop is answered (forwarded queries included), what arrives
// after is not, and past the grace period the queries still owed get
// SERVFAIL instead of silence. The upstream holds its answer until the test
// releases it, so nothing here depends on how fast the machine is.

import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildQuery, decode, sendUdp } from '../helpers/dns-client.js';
import { inventoryConfig, startTestServer, type TestServer } from '../helpers/server.js';
import { startUpstreamStub, type UpstreamStub } from '../helpers/upstream-stub.js';
import { waitFor } from '../interop/tools.js';

let upstream: UpstreamStub;
let srv: TestServer | undefined;
const sockets: Socket[] = [];

beforeEach(async () => {
  upstream = await startUpstreamStub({ records: { 'slow.example': ['192.0.2.7'], 'fast.example': ['192.0.2.8'] } });
  upstream.setBehaviour('slow.example', { hold: true });
  srv = await startTestServer(
    inventoryConfig({ upstream: upstream.port, timeoutMs: 30_000, records: ['ops: { a: ["10.0.9.9"] }'] }),
    { files: { 'inventory.json': '{"Addresses": []}' } },
  );
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await srv?.close();
  srv = undefined;
  await upstream.close();
});

const heldQueries = (): number => upstream.queries.filter((q) => q.name === 'slow.example').length;

/** A TCP client that frames queries and collects framed replies. */
function tcpClient(port: number): Promise<{ socket: Socket; replies: Buffer[]; ended: Promise<void>; send(q: Buffer): void }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    sockets.push(socket);
    const replies: Buffer[] = [];
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        replies.push(buffered.subarray(2, 2 + buffered.readUInt16BE(0)));
        buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
      }
    });
    const ended = new Promise<void>((done) => socket.on('end', () => done()));
    socket.on('error', reject);
    socket.on('connect', () =>
      resolve({
        socket,
        replies,
        ended,
        send(q) {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(q.length);
          socket.write(Buffer.concat([len, q]));
        },
      }),
    );
  });
}

describe('graceful stop', () => {
  it('UDP: answers the forwarded query in flight, ignores datagrams that arrive after the stop began', async () => {
    const s = srv!;
    const inFlight = sendUdp(s.port, buildQuery('slow.example', 'A'), { timeoutMs: 30_000 });
    await waitFor('the upstream to get the query', () => (heldQueries() === 1 ? true : undefined));

    const stopped = s.server.shutdown({ graceMs: 60_000 });
    const late = createSocket('udp4');
    const lateReplies: Buffer[] = [];
    late.on('message', (m) => lateReplies.push(m));
    late.send(buildQuery('ops.internal', 'A'), s.port, '127.0.0.1');
    await waitFor('the late datagram to be ignored', () => (s.server.ignoredWhileStopping() === 1 ? true : undefined));

    upstream.release('slow.example');
    expect(decode((await inFlight)!).addresses).toEqual(['192.0.2.7']);
    expect(await stopped).toEqual({ drained: true });
    late.close();
    expect(lateReplies).toEqual([]);
  });

  it('TCP: answers pipelined queries already received, ignores later ones, accepts no new connection, then ends the connection', async () => {
    const s = srv!;
    const client = await tcpClient(s.port);
    client.send(buildQuery('slow.example', 'A', { id: 1 }));
    client.send(buildQuery('ops.internal', 'A', { id: 2 }));
    await waitFor('the upstream to get the query', () => (heldQueries() === 1 ? true : undefined));
    await waitFor('the zone answer', () => (client.replies.length === 1 ? true : undefined));

    const stopped = s.server.shutdown({ graceMs: 60_000 });
    client.send(buildQuery('fast.example', 'A', { id: 3 }));
    await expect(
      new Promise((resolve, reject) => {
        const other = connect({ host: '127.0.0.1', port: s.port });
        sockets.push(other);
        other.on('connect', () => resolve('connected'));
        other.on('error', reject);
      }),
    ).rejects.toThrow(/ECONNREFUSED/);

    upstream.release('slow.example');
    await client.ended;
    expect(client.replies.map((r) => decode(r).packet.header.id)).toEqual([2, 1]);
    expect(decode(client.replies[1]!).addresses).toEqual(['192.0.2.7']);
    expect(upstream.queries.map((q) => q.name)).not.toContain('fast.example');
    expect(await stopped).toEqual({ drained: true });
  });

  it('refuses a reload once the stop has begun, building no new chain or discovery', async () => {
    const s = srv!;
    const inFlight = sendUdp(s.port, buildQuery('slow.example', 'A'), { timeoutMs: 30_000 });
    await waitFor('the upstream to get the query', () => (heldQueries() === 1 ? true : undefined));
    const [chain, discovery, config] = [s.server.chain(), s.server.discovery(), s.server.config()];
    const stopped = s.server.shutdown({ graceMs: 60_000 });
    // Upstream and EC2 settings both change: applied, this would build a new
    // chain (never closed: shutdown closed the old ones) and start a new
    // discovery (polling EC2 after the stop).
    const next = { ...config, upstream: { ...config.upstream, timeoutMs: config.upstream.timeoutMs + 1 }, ec2: { ...config.ec2, pollIntervalMs: 1_000 } };
    await expect(s.server.reload(next)).rejects.toThrow('stopping; reload ignored');
    await expect(s.server.reloadFromFile()).rejects.toThrow('stopping; reload ignored');
    expect(s.server.chain()).toBe(chain);
    expect(s.server.discovery()).toBe(discovery);
    expect(s.server.config()).toBe(config);
    expect(s.server.status().config.reloads).toEqual({ ok: 0, failed: 0 });
    upstream.release('slow.example');
    expect(decode((await inFlight)!).addresses).toEqual(['192.0.2.7']);
    expect(await stopped).toEqual({ drained: true });
  });

  it('answers SERVFAIL to what is still owed once the grace period is over', async () => {
    const s = srv!;
    const udp = sendUdp(s.port, buildQuery('slow.example', 'A', { id: 7 }), { timeoutMs: 30_000 });
    const tcp = await tcpClient(s.port);
    tcp.send(buildQuery('slow.example', 'A', { id: 8 }));
    await waitFor('the upstream to get both queries', () => (heldQueries() === 2 ? true : undefined));

    // The upstream never answers (its timeout is 30 s): only the grace bound ends this.
    expect(await s.server.shutdown({ graceMs: 50 })).toEqual({ drained: false });
    const viaUdp = decode((await udp)!);
    expect([viaUdp.packet.header.id, viaUdp.rcode]).toEqual([7, 2]);
    await waitFor('the TCP answer', () => (tcp.replies.length === 1 ? true : undefined));
    expect([decode(tcp.replies[0]!).packet.header.id, decode(tcp.replies[0]!).rcode]).toEqual([8, 2]);
  });

  it('close() with forwarded queries still owed: their SERVFAIL meets closed listeners and nothing is thrown', async () => {
    const s = srv!;
    const failures: unknown[] = [];
    const record = (err: unknown): void => {
      failures.push(err);
    };
    process.on('unhandledRejection', record);
    process.on('uncaughtException', record);
    try {
      const udp = sendUdp(s.port, buildQuery('slow.example', 'A', { id: 9 }), { timeoutMs: 1000 });
      const tcp = await tcpClient(s.port);
      tcp.send(buildQuery('slow.example', 'A', { id: 10 }));
      await waitFor('the upstream to get both queries', () => (heldQueries() === 2 ? true : undefined));
      // Listeners close first, then the chain, whose closing turns the pending forwards into SERVFAIL.
      await s.server.close();
      srv = undefined;
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      expect(failures).toEqual([]);
      expect(s.server.pipeline.stats.pending).toBe(0);
      expect(await udp).toBeNull();
    } finally {
      process.off('unhandledRejection', record);
      process.off('uncaughtException', record);
    }
  });
});
