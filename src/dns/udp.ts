// Stage 1 (UDP): datagrams in, replies out. node:dgram directly rather than
// dns2's UDPServer: that one parses every packet with Packet.parse before we
// see it (the slowest part of dns2), never sends FORMERR, and lets a failed
// send() reject unhandled, which ends a Node 20 process.

import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Logger } from '../log.js';
import { isPending, type Client, type Reply } from './pipeline.js';

export type Handler = (msg: Buffer, client: Client) => Reply | Promise<Reply>;

export interface UdpListener {
  readonly socket: Socket;
  readonly port: number;
  /**
   * Graceful stop: new datagrams are read and ignored from now on, while the
   * socket stays open to send the replies still owed (forwarded queries in
   * flight). Resolves once every one of them has been handed to the kernel.
   */
  drain(): Promise<void>;
  /** Datagrams ignored since drain() began. */
  ignored(): number;
  close(): Promise<void>;
}

export function listenUdp(host: string, port: number, handler: Handler, logger: Logger): Promise<UdpListener> {
  const socket = createSocket({
    type: isIPv6(host) ? 'udp6' : 'udp4',
    // Bursts queue in the kernel while the event loop is busy; the default
    // ~200 KB drops packets under a few thousand queries in flight.
    recvBufferSize: 4 * 1024 * 1024,
    ipv6Only: isIPv6(host),
  });
  let sendErrors = 0;
  /** Replies not yet handed to the kernel: pending answers plus sends not yet completed. */
  let owed = 0;
  let draining = false;
  let ignored = 0;
  let closed = false;
  let idle: (() => void) | undefined;
  let drained: Promise<void> | undefined;
  const settle = (): void => {
    if (--owed === 0 && idle !== undefined) idle();
  };
  const sent = (err: Error | null): void => {
    // A vanished or unreachable client is routine; count it, do not crash or log per packet.
    if (err && sendErrors++ === 0) logger.warn({ err: err.message }, 'udp send failed (further failures not logged)');
    settle();
  };
  socket.on('message', (msg, rinfo) => {
    if (draining) {
      ignored++;
      return;
    }
    // Port 0 cannot be answered (send() throws) and is always spoofed.
    if (rinfo.port === 0) return;
    const sendAll = (r: Buffer | Buffer[]): void => {
      // A reply that comes after close() (close() ends the listeners before the
      // forward chain, whose closing answers what is pending with SERVFAIL)
      // has no socket to go out on; send() would throw synchronously.
      if (closed) {
        settle();
        return;
      }
      try {
        if (Buffer.isBuffer(r)) {
          socket.send(r, rinfo.port, rinfo.address, sent);
          return;
        }
        // Several messages are a TCP-only answer (a zone transfer), never given
        // to UDP; sent as they are, the last one settling what is owed.
        if (r.length === 0) settle();
        r.forEach((m, i) => socket.send(m, rinfo.port, rinfo.address, i === r.length - 1 ? sent : () => undefined));
      } catch (err) {
        sent(err as Error);
      }
    };
    const client: Client = { address: rinfo.address, port: rinfo.port, transport: 'udp' };
    let reply: Reply | Promise<Reply>;
    try {
      reply = handler(msg, client);
    } catch (err) {
      logger.error({ err }, 'query handler failed');
      return;
    }
    if (reply === null) return;
    owed++;
    if (!isPending(reply)) {
      sendAll(reply);
      return;
    }
    // .then().catch(), not .then(ok, err): a throw in `ok` must not become an
    // unhandled rejection (Node ends the process on one).
    reply
      .then((r) => {
        if (r !== null) sendAll(r);
        else settle();
      })
      .catch((err: unknown) => {
        logger.error({ err }, 'query handler failed');
        settle();
      });
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      socket.on('error', (err) => logger.error({ err }, 'udp socket error'));
      resolve({
        socket,
        port: socket.address().port,
        drain() {
          draining = true;
          drained ??= owed === 0 ? Promise.resolve() : new Promise<void>((done) => (idle = done));
          return drained;
        },
        ignored: () => ignored,
        close: () =>
          new Promise<void>((done) => {
            if (closed) return done();
            closed = true;
            socket.close(() => done());
          }),
      });
    });
  });
}
