// The admin HTTP listener (admin.listen): node:http, no framework, five
// routes. It is a separate port from DNS, off by default, and meant for
// loopback or a private address a Prometheus server reaches. A port that
// tells what the server knows must not be an easy thing to tie up either:
//
// - admin.allow is checked on every request (403 outside it, counted);
// - headers over 8 KiB get 431; headers not complete within 5 s get 408
//   (a slowloris client holds nothing for long); a body not complete within
//   10 s is cut off;
// - at most 32 connections. A new connection beyond that evicts the oldest
//   idle one (kept alive, or still sending its headers) instead of being
//   refused, so a pile of idle sockets cannot lock the operator out; only
//   when all 32 are mid-request is the newcomer closed;
// - an idle kept-alive connection is closed after 5 s.

import http from 'node:http';
import type { Socket } from 'node:net';
import type { HostPort } from '../config/types.js';
import type { Admit } from '../dns/admit.js';
import { listenServer } from '../dns/listen.js';
import type { Logger } from '../log.js';
import type { ReadinessState } from './readiness.js';

export interface AdminLimits {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** Largest request head (request line + headers) in bytes; more gets 431. */
  readonly maxHeaderSize: number;
  readonly maxConnections: number;
  /** How often Node checks the header and request timeouts. */
  readonly checkIntervalMs: number;
}

export const DEFAULT_ADMIN_LIMITS: AdminLimits = {
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  maxHeaderSize: 8 * 1024,
  maxConnections: 32,
  checkIntervalMs: 1_000,
};

export interface RefreshResult {
  /** 'ok': the poll this request caused (or joined) succeeded. */
  readonly result: 'ok' | 'error';
  readonly [key: string]: unknown;
}

/** What the routes serve; each reads the server's state when asked. */
export interface AdminRoutes {
  readiness(): ReadinessState;
  metrics(): Promise<{ readonly contentType: string; readonly body: string }>;
  status(): unknown;
  /** Polls EC2 now (as SIGUSR2 does) and says how it went. */
  refresh(): Promise<RefreshResult>;
}

export interface AdminListenerOptions {
  readonly listen: HostPort;
  /** The current admin.allow (a reload may change it). */
  readonly admit: () => Admit;
  /** The current admin.allow_refresh. */
  readonly allowRefresh: () => boolean;
  readonly routes: AdminRoutes;
  readonly logger: Logger;
  readonly limits?: Partial<AdminLimits>;
}

export interface AdminListener {
  readonly host: string;
  readonly port: number;
  /** Requests refused by admin.allow. */
  refused(): number;
  /** Connections open now. */
  connections(): number;
  close(): Promise<void>;
}

interface Route {
  readonly methods: readonly string[];
  readonly handle: (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;
}

const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';

function reply(res: http.ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers });
  res.end(body);
}

export function listenAdmin(options: AdminListenerOptions): Promise<AdminListener> {
  const limits: AdminLimits = { ...DEFAULT_ADMIN_LIMITS, ...options.limits };
  const { routes, logger } = options;
  let refused = 0;

  const table = new Map<string, Route>([
    ['/health', { methods: ['GET', 'HEAD'], handle: (_req, res) => reply(res, 200, TEXT, 'OK\n') }],
    [
      '/ready',
      {
        methods: ['GET', 'HEAD'],
        handle: (_req, res) => {
          const { ready, waiting } = routes.readiness();
          if (ready) reply(res, 200, TEXT, 'ready\n');
          else reply(res, 503, TEXT, `not ready:\n${waiting.map((w) => `- ${w}\n`).join('')}`);
        },
      },
    ],
    [
      '/metrics',
      {
        methods: ['GET', 'HEAD'],
        handle: async (_req, res) => {
          const { contentType, body } = await routes.metrics();
          reply(res, 200, contentType, body);
        },
      },
    ],
    ['/status', { methods: ['GET', 'HEAD'], handle: (_req, res) => reply(res, 200, JSON_TYPE, `${JSON.stringify(routes.status(), null, 2)}\n`) }],
    [
      '/refresh',
      {
        methods: ['POST'],
        handle: async (req, res) => {
          if (!options.allowRefresh()) {
            reply(res, 403, TEXT, 'POST /refresh is off: set admin.allow_refresh: true to let it poll EC2\n');
            return;
          }
          logger.info({ client: req.socket.remoteAddress }, 'poll requested (POST /refresh)');
          const result = await routes.refresh();
          reply(res, result.result === 'ok' ? 200 : 502, JSON_TYPE, `${JSON.stringify(result, null, 2)}\n`);
        },
      },
    ],
  ]);

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    // Nothing here reads a body: discard it so the connection can be reused.
    req.resume();
    const client = req.socket.remoteAddress ?? '';
    if (!options.admit()(client)) {
      refused++;
      reply(res, 403, TEXT, `forbidden: ${client} is not in admin.allow\n`);
      return;
    }
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const route = table.get(path);
    if (route === undefined) {
      reply(res, 404, TEXT, `not found: ${path}\nroutes: GET /health, /ready, /metrics, /status; POST /refresh\n`);
      return;
    }
    if (!route.methods.includes(req.method ?? '')) {
      reply(res, 405, TEXT, `${req.method ?? '?'} not allowed on ${path}; use ${route.methods.join(' or ')}\n`, { allow: route.methods.join(', ') });
      return;
    }
    let result;
    try {
      result = route.handle(req, res);
    } catch (err) {
      result = Promise.reject(err);
    }
    if (result instanceof Promise) {
      result.catch((err: unknown) => {
        logger.error({ err, path }, 'admin request failed');
        if (!res.headersSent) reply(res, 500, TEXT, 'internal error\n');
        else res.destroy();
      });
    }
  };

  const server = http.createServer(
    {
      maxHeaderSize: limits.maxHeaderSize,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: limits.checkIntervalMs,
    },
    onRequest,
  );
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;

  // Oldest first (Map keeps insertion order); busy: a request is being answered.
  const sockets = new Map<Socket, { busy: boolean }>();
  server.on('connection', (socket: Socket) => {
    if (sockets.size >= limits.maxConnections) {
      let evicted = false;
      for (const [s, state] of sockets) {
        if (!state.busy) {
          s.destroy();
          sockets.delete(s);
          evicted = true;
          break;
        }
      }
      if (!evicted) {
        socket.destroy();
        return;
      }
    }
    sockets.set(socket, { busy: false });
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const state = sockets.get(req.socket);
    if (state === undefined) return;
    state.busy = true;
    res.on('close', () => {
      state.busy = false;
    });
  });
  // Oversized heads (431), slow heads (408) and garbage (400) are answered by
  // Node's own clientError handling, which closes the connection.

  const { host, port } = options.listen;
  return listenServer(server, host, port, (err) => logger.error({ err }, 'admin server error')).then(
    (bound): AdminListener => ({
      host,
      port: bound,
      refused: () => refused,
      connections: () => sockets.size,
      close: () =>
        new Promise<void>((done) => {
          server.close(() => done());
          server.closeAllConnections();
        }),
    }),
  );
}
