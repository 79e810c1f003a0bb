// One DNS listen address is a UDP socket and a TCP server on the same port
// (RFC 7766: TCP is not optional). With port 0 the two cannot simply ask the
// kernel separately: UDP picks the port, and TCP must take the same one.

import type { Server } from 'node:net';
import type { TcpListener } from './tcp.js';
import type { UdpListener } from './udp.js';

/**
 * UDP and TCP on the same port. With port 0 the kernel picks the UDP port and
 * TCP may find it taken, so try a few times.
 */
export async function bindPair(
  host: string,
  port: number,
  udp: (port: number) => Promise<UdpListener>,
  tcp: (port: number) => Promise<TcpListener>,
): Promise<[UdpListener, TcpListener]> {
  for (let attempt = 0; ; attempt++) {
    const u = await udp(port);
    try {
      return [u, await tcp(u.port)];
    } catch (err) {
      await u.close();
      if (port !== 0 || attempt >= 5) throw err;
    }
  }
}

/**
 * Starts `server` listening and resolves with the port it got. An IPv6 host
 * listens IPv6-only, so "[::]:53" and "0.0.0.0:53" can both be configured.
 * A listen failure rejects; errors after that go to `onError`.
 */
export function listenServer(server: Server, host: string, port: number, onError: (err: Error) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, ipv6Only: host.includes(':') }, () => {
      server.off('error', reject);
      server.on('error', onError);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
    });
  });
}
