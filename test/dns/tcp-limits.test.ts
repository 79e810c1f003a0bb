// TCP connection management (RFC 7766 §6.2.3): idle connections are closed,
// busy ones are not, and one client cannot pin unbounded work.

import { connect } from 'node:net';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { buildQuery, decode } from '../helpers/dns-client.js';
import { inventory, inventoryConfig, startTestServer, type TestServer } from '../helpers/server.js';
import { startUpstreamStub, type UpstreamStub } from '../helpers/upstream-stub.js';

let srv: TestServer;
let upstream: UpstreamStub;

beforeAll(async () => {
  upstream = await startUpstreamStub();
  for (let i = 0; i < 20; i++) upstream.setBehaviour(`slow${i}.example`, { drop: true });
  srv = await startTestServer(
    inventoryConfig({ upstream: upstream.port, timeoutMs: 1000, records: ['db: { elastic_ip: { tag: { Role: db } } }'] }),
    {
      files: { 'inventory.json': inventory([{ publicIp: '198.51.100.10', allocationId: 'eipalloc-0db00000000000001', privateIp: '10.0.1.10', tags: { Role: 'db' } }]) },
      tcp: { idleTimeoutMs: 300, maxPipelined: 4 },
    },
  );
  await srv.server.discovery().pollNow();
});
afterAll(async () => {
  await srv.close();
  await upstream.close();
});

function framed(msg: Buffer): Buffer {
  return Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 0xff]), msg]);
}

it('closes an idle connection after the idle timeout, after answering on it', async () => {
  const socket = connect({ host: '127.0.0.1', port: srv.port });
  const replies: Buffer[] = [];
  socket.on('data', (d) => replies.push(d));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('connect', () => socket.write(framed(buildQuery('db.internal', 'A'))));
  await closed; // the test's own timeout is the failure mode if the server never closes it
  expect(decode(Buffer.concat(replies).subarray(2)).addresses).toEqual(['10.0.1.10']);
});

it('answers every query of a pipelined burst larger than the per-connection limit', async () => {
  const n = 50;
  const socket = connect({ host: '127.0.0.1', port: srv.port });
  let buf = Buffer.alloc(0);
  const ids: number[] = [];
  const done = new Promise<void>((resolve) => {
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const len = buf.readUInt16BE(0);
        ids.push(decode(buf.subarray(2, 2 + len)).packet.header.id);
        buf = buf.subarray(2 + len);
      }
      if (ids.length === n) resolve();
    });
  });
  socket.on('connect', () => socket.write(Buffer.concat(Array.from({ length: n }, (_, i) => framed(buildQuery('db.internal', 'A', { id: i }))))));
  await done;
  socket.destroy();
  expect(ids.sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
});

it('keeps at most maxPipelined queries of one connection in flight', async () => {
  // The upstream never answers slowN.example, so forwarded queries stay in
  // flight until the 1 s upstream timeout; meanwhile only 4 may be sent on.
  // (Distinct names: identical ones would share one upstream query.)
  upstream.queries.length = 0;
  const socket = connect({ host: '127.0.0.1', port: srv.port });
  let replies = 0;
  socket.on('data', () => replies++);
  socket.on('connect', () => socket.write(Buffer.concat(Array.from({ length: 20 }, (_, i) => framed(buildQuery(`slow${i}.example`, 'A', { id: i }))))));
  await vi.waitFor(() => expect(upstream.queries.length).toBe(4), { timeout: 900, interval: 10 });
  await new Promise((r) => setTimeout(r, 200));
  expect(upstream.queries.length).toBe(4);
  expect(replies).toBe(0);
  socket.destroy();
});
