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
  const sent = (err: Error | null): void => {
    // A vanished or unreachable client is routine; count it, do not crash or log per packet.
    if (err && sendErrors++ === 0) logger.warn({ err: err.message }, 'udp send failed (further failures not logged)');
  };
  socket.on('message', (msg, rinfo) => {
    // Port 0 cannot be answered (send() throws) and is always spoofed.
    if (rinfo.port === 0) return;
    // Several messages are a TCP-only answer (zone transfer); never asked of UDP, sent as they are.
    const sendAll = (r: Buffer | Buffer[]): void => {
      if (Buffer.isBuffer(r)) socket.send(r, rinfo.port, rinfo.address, sent);
      else for (const m of r) socket.send(m, rinfo.port, rinfo.address, sent);
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
    if (!isPending(reply)) {
      sendAll(reply);
      return;
    }
    reply.then(
      (r) => {
        if (r !== null) sendAll(r);
      },
      (err: unknown) => logger.error({ err }, 'query handler failed'),
    );
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      socket.on('error', (err) => logger.error({ err }, 'udp socket error'));
      resolve({
        socket,
        port: socket.address().port,
        close: () => new Promise<void>((done) => socket.close(() => done())),
      });
    });
  });
}
