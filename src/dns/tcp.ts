// Stage 1 (TCP, RFC 7766): 2-byte length framing (src/wire/framing.ts), several queries per
// connection answered as they complete (out of order is allowed), an idle
// timeout, and bounds on connections and queries in flight so a slow or
// hostile client cannot pin memory.

import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../log.js';
import { Deframer, frame } from '../wire/framing.js';
import { listenServer } from './listen.js';
import { isPending, type Reply } from './pipeline.js';
import type { Handler } from './udp.js';

export interface TcpOptions {
  /** RFC 7766 §6.2.3 suggests seconds, not minutes. */
  readonly idleTimeoutMs: number;
  readonly maxConnections: number;
  /** Reading pauses past this many unanswered queries on one connection. */
  readonly maxPipelined: number;
}

export const DEFAULT_TCP_OPTIONS: TcpOptions = { idleTimeoutMs: 10_000, maxConnections: 1024, maxPipelined: 64 };

export interface TcpListener {
  readonly server: Server;
  readonly port: number;
  /**
   * Graceful stop: accepts no new connection; on each open one, answers the
   * queries already received (in flight, and whole frames already buffered
   * behind maxPipelined), ignores anything sent after this call, and closes
   * its side once those answers are written. Resolves when every connection
   * is done.
   */
  drain(): Promise<void>;
  close(): Promise<void>;
}

interface Connection {
  /** Stop taking new queries; `finished` is called once the owed answers are written. */
  drain(): void;
}

export function listenTcp(
  host: string,
  port: number,
  handler: Handler,
  logger: Logger,
  options: TcpOptions = DEFAULT_TCP_OPTIONS,
): Promise<TcpListener> {
  const sockets = new Set<Socket>();
  const connections = new Map<Socket, Connection>();
  let draining = false;
  let drained: Promise<void> | undefined;
  let idle: (() => void) | undefined;
  const forget = (socket: Socket): void => {
    if (!connections.delete(socket)) return;
    if (draining && connections.size === 0) idle?.();
  };
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    if (draining) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => {
      sockets.delete(socket);
      forget(socket);
    });
    connections.set(socket, serveConnection(socket, handler, logger, options, () => forget(socket)));
  });
  server.maxConnections = options.maxConnections;
  return listenServer(server, host, port, (err) => logger.error({ err }, 'tcp server error')).then(
    (bound): TcpListener => ({
      server,
      port: bound,
      drain() {
        if (drained !== undefined) return drained;
        draining = true;
        server.close();
        drained = new Promise<void>((done) => {
          idle = done;
        });
        for (const c of [...connections.values()]) c.drain();
        if (connections.size === 0) idle?.();
        return drained;
      },
      close: () =>
        new Promise<void>((done) => {
          if (server.listening) server.close(() => done());
          else done();
          for (const s of sockets) s.destroy();
        }),
    }),
  );
}

function serveConnection(socket: Socket, handler: Handler, logger: Logger, options: TcpOptions, finished: () => void): Connection {
  const client = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, transport: 'tcp' as const };
  const deframer = new Deframer();
  /** Whole queries received but not yet handed to the handler (past maxPipelined). */
  let queued: Buffer[] = [];
  let inFlight = 0;
  let peerEnded = false;
  let draining = false;
  let ending = false;

  socket.setTimeout(options.idleTimeoutMs, () => socket.destroy());
  socket.on('error', () => socket.destroy());

  const write = (message: Buffer): void => {
    socket.write(frame(message));
  };
  // A zone transfer answers one request with several messages, written in order.
  const send = (reply: Reply): void => {
    inFlight--;
    if (reply === null || socket.destroyed) return;
    if (Buffer.isBuffer(reply)) write(reply);
    else for (const m of reply) write(m);
  };
  const sendLater = (reply: Reply): void => {
    send(reply);
    drain();
  };

  // Frames beyond maxPipelined stay buffered (and reading pauses) until
  // answers go out, so one connection never has more than that in flight.
  const drain = (): void => {
    if (socket.destroyed) return;
    while (inFlight < options.maxPipelined && queued.length > 0) {
      const msg = queued.shift()!;
      const len = msg.length;
      inFlight++;
      let reply;
      try {
        reply = handler(msg, client);
      } catch (err) {
        logger.error({ err }, 'query handler failed');
        reply = null;
      }
      if (reply === null && len < 12) {
        // No header to answer: the stream is not DNS, so stop reading it.
        socket.destroy();
        return;
      }
      if (isPending(reply)) {
        // A throw while sending must not become an unhandled rejection (it ends the process).
        reply
          .then(sendLater, () => sendLater(null))
          .catch((err: unknown) => {
            logger.error({ err }, 'sending a tcp answer failed');
            socket.destroy();
          });
      } else send(reply);
    }
    if (draining) {
      // Keep reading (and ignoring) so no unread bytes turn our close into a reset.
      if (socket.isPaused()) socket.resume();
      if (inFlight === 0 && queued.length === 0 && !ending) {
        ending = true;
        // Our answers are flushed before the FIN; the peer may keep its side open.
        socket.end(finished);
      }
      return;
    }
    if (inFlight >= options.maxPipelined) socket.pause();
    else if (socket.isPaused() && !peerEnded) socket.resume();
    if (peerEnded && inFlight === 0 && !socket.destroyed) socket.end();
  };

  socket.on('data', (chunk: Buffer) => {
    if (draining) return;
    const messages = deframer.push(chunk);
    queued = queued.length === 0 ? messages : queued.concat(messages);
    drain();
  });
  socket.on('end', () => {
    peerEnded = true;
    drain();
  });
  return {
    drain() {
      draining = true;
      drain();
    },
  };
}
