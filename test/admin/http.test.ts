// The admin listener over real HTTP: every route, and each kind of bad input
// (unknown path, wrong method, a client outside admin.allow, oversized
// headers, a slow request, idle connections piling up).

import { connect, type Socket } from 'node:net';
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { query } from '../helpers/dns-client.js';
import { get, request } from '../helpers/http-client.js';
import { scrape } from '../helpers/prometheus.js';
import { inventory, inventoryConfig, startTestServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../interop/tools.js';

let srv: TestServer | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await srv?.close();
  srv = undefined;
});

const DB = (privateIp: string): string =>
  inventory([{ publicIp: '198.51.100.10', allocationId: 'eipalloc-0db00000000000001', privateIp, tags: { Role: 'db' } }]);

async function start(admin: NonNullable<Parameters<typeof startTestServer>[1]>['admin'] = true, limits = {}): Promise<TestServer> {
  srv = await startTestServer(
    inventoryConfig({ upstream: '127.0.0.1:9', records: ['db: { elastic_ip: { tag: { Role: db } } }', 'ops: { a: ["10.0.9.9"] }'] }),
    { files: { 'inventory.json': DB('10.0.1.10') }, admin, server: { admin: { limits, defaultMetrics: false } } },
  );
  await srv.server.discovery().pollNow();
  return srv;
}

/** Connects, writes `data`, and resolves with everything received once the server closes the connection. */
function rawUntilClosed(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    sockets.push(socket);
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
    socket.on('connect', () => socket.write(data));
  });
}

describe('routes', () => {
  it('GET /health answers 200 OK, HEAD the same without a body', async () => {
    const { adminPort } = await start();
    const r = await get(adminPort, '/health');
    expect(r.status).toBe(200);
    expect(r.body).toBe('OK\n');
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    const head = await request(adminPort, '/health', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('GET /ready answers 200 once the listeners are bound and the zone has data', async () => {
    const { adminPort } = await start();
    const r = await get(adminPort, '/ready');
    expect(r.status).toBe(200);
    expect(r.body).toBe('ready\n');
  });

  it('GET /metrics answers the Prometheus text format', async () => {
    const { adminPort } = await start();
    const r = await get(adminPort, '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(r.body).toContain('# TYPE eipdns_dns_requests_total counter');
  });

  it('GET /status answers JSON', async () => {
    const { adminPort } = await start();
    const r = await get(adminPort, '/status');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    const status = JSON.parse(r.body) as { ready: boolean; records: Array<{ name: string; addresses: string[] }> };
    expect(status.ready).toBe(true);
    expect(status.records.map((x) => [x.name, x.addresses])).toEqual([
      ['db.internal', ['10.0.1.10']],
      ['ops.internal', ['10.0.9.9']],
    ]);
  });

  it('POST /refresh is refused (403) unless admin.allow_refresh is true', async () => {
    const { adminPort } = await start();
    const r = await request(adminPort, '/refresh', { method: 'POST' });
    expect(r.status).toBe(403);
    expect(r.body).toMatch(/allow_refresh/);
  });

  it('POST /refresh polls at once (like SIGUSR2) and reports the result', async () => {
    const s = await start({ allowRefresh: true });
    expect((await query(s.port, 'db.internal')).addresses).toEqual(['10.0.1.10']);
    writeFileSync(join(s.dir, 'inventory.json'), DB('10.0.1.20'));
    const r = await request(s.adminPort, '/refresh', { method: 'POST' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ result: 'ok', state: 'ok' });
    // The poll finished before the response: no waiting needed.
    expect((await query(s.port, 'db.internal')).addresses).toEqual(['10.0.1.20']);

    writeFileSync(join(s.dir, 'inventory.json'), '{ "Addresses": [ ');
    const failed = await request(s.adminPort, '/refresh', { method: 'POST' });
    expect(failed.status).toBe(502);
    expect(JSON.parse(failed.body)).toMatchObject({ result: 'error', state: 'degraded', error: { code: 'InventoryMalformed' } });
  });
});

describe('bad input', () => {
  it('answers 404 for an unknown path, naming the routes', async () => {
    const { adminPort } = await start();
    for (const path of ['/', '/nope', '/metrics/extra', '/health/']) {
      const r = await get(adminPort, path);
      expect(r.status, path).toBe(404);
      expect(r.body).toContain('GET /health, /ready, /metrics, /status; POST /refresh');
    }
    // A query string does not change the route.
    expect((await get(adminPort, '/health?verbose=1')).status).toBe(200);
  });

  it('answers 405 with Allow for a wrong method', async () => {
    const { adminPort } = await start({ allowRefresh: true });
    for (const path of ['/health', '/ready', '/metrics', '/status']) {
      for (const method of ['POST', 'PUT', 'DELETE']) {
        const r = await request(adminPort, path, { method, body: 'x' });
        expect(r.status, `${method} ${path}`).toBe(405);
        expect(r.headers.allow).toBe('GET, HEAD');
      }
    }
    const r = await request(adminPort, '/refresh', { method: 'GET' });
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('POST');
  });

  it('refuses (403) a client outside admin.allow, on every route, and counts it', async () => {
    const { adminPort } = await start({ allow: ['127.0.0.1/32'], allowRefresh: true });
    for (const [path, method] of [['/health', 'GET'], ['/metrics', 'GET'], ['/status', 'GET'], ['/refresh', 'POST'], ['/nope', 'GET']] as const) {
      const r = await request(adminPort, path, { method, localAddress: '127.0.0.2' });
      expect(r.status, path).toBe(403);
      expect(r.body).toBe('forbidden: 127.0.0.2 is not in admin.allow\n');
    }
    expect((await scrape(adminPort)).value('eipdns_admin_refused_total')).toBe(5);
  });

  it('answers 431 to headers larger than 8 KiB and closes', async () => {
    const { adminPort } = await start();
    const received = await rawUntilClosed(adminPort, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`);
    expect(received).toMatch(/^HTTP\/1\.1 431 /);
    // Just under the limit is fine.
    const ok = await request(adminPort, '/health', { headers: { 'x-big': 'a'.repeat(7_000) } });
    expect(ok.status).toBe(200);
  });

  it('cuts off a request whose headers never finish (408), and one whose body never finishes', async () => {
    const { adminPort } = await start(true, { headersTimeoutMs: 200, requestTimeoutMs: 400, checkIntervalMs: 50 });
    const slowHead = await rawUntilClosed(adminPort, 'GET /health HTTP/1.1\r\nHost: x\r\n');
    expect(slowHead).toMatch(/^HTTP\/1\.1 408 /);
    const slowBody = await rawUntilClosed(adminPort, 'POST /refresh HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly a little');
    // The 403 (refresh is off) goes out at once; then the unfinished body ends the connection.
    expect(slowBody).toMatch(/^HTTP\/1\.1 403 /);
    // The server still serves.
    expect((await get(adminPort, '/health')).status).toBe(200);
  });

  it('closes a kept-alive connection once it has been idle for the keep-alive timeout', async () => {
    const { adminPort } = await start(true, { keepAliveTimeoutMs: 100 });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const socketClosed = new Promise<void>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: adminPort, path: '/health', agent }, (res) => {
        res.resume();
        res.on('end', () => undefined);
      });
      req.on('socket', (socket) => socket.on('close', () => resolve()));
    });
    await socketClosed;
    agent.destroy();
  });

  it('many idle connections cannot exhaust it: beyond the cap the oldest idle one is closed, and requests still get through', async () => {
    const maxConnections = 8;
    const { adminPort } = await start(true, { maxConnections });
    let closed = 0;
    const idle = await Promise.all(
      Array.from(
        { length: 40 },
        () =>
          new Promise<Socket>((resolve, reject) => {
            const s = connect({ host: '127.0.0.1', port: adminPort }, () => resolve(s));
            sockets.push(s);
            s.on('error', reject);
            s.on('close', () => closed++);
          }),
      ),
    );
    expect(idle).toHaveLength(40);
    // Each connection past the cap evicted an idle one: 32 closed, 8 left.
    await waitFor('the server to close the idle connections beyond the cap', () => (closed >= 40 - maxConnections ? true : undefined));
    const r = await get(adminPort, '/health');
    expect(r.status).toBe(200);
    // The request's own connection evicted one more.
    await waitFor('one more eviction', () => (closed >= 40 - maxConnections + 1 ? true : undefined));
    expect(closed).toBe(40 - maxConnections + 1);
  });
});
