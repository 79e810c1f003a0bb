// Where an upstream UDP query leaves from: its own freshly bound socket, on a
// port the kernel draws at random from the ephemeral range (28k ports on a
// default Linux), as dnsmasq and Unbound do. That is RFC 5452's port
// entropy: ~15 bits on top of the 16-bit ID, so a blind spoofer must hit one
// in ~10⁹. A pool of long-lived sockets (what this replaced) gave 3 bits.
// The socket is closed as soon as its attempt settles, so a late or forged
// datagram finds nothing listening.

import dgram from 'node:dgram';

export interface UdpAttemptHandlers {
  readonly onMessage: (msg: Buffer, rinfo: dgram.RemoteInfo) => void;
  readonly onError: (err: Error) => void;
}

/** Sends `payload` from a new socket and returns it; the caller closes it with closeQuiet. */
export function sendFromFreshPort(
  family: 'udp4' | 'udp6',
  payload: Buffer,
  port: number,
  host: string,
  handlers: UdpAttemptHandlers,
): dgram.Socket {
  const sock = dgram.createSocket({ type: family, ipv6Only: family === 'udp6' });
  sock.on('message', handlers.onMessage);
  // Unconnected sockets see no ICMP errors, so this is a bind or send failure.
  sock.on('error', handlers.onError);
  // send() on an unbound socket binds it to the wildcard address, port 0:
  // the kernel's random pick.
  sock.send(payload, port, host, (err) => {
    if (err) handlers.onError(err);
  });
  // Only the attempt's timer should hold the process open.
  sock.unref();
  return sock;
}

export function closeQuiet(sock: dgram.Socket): void {
  try {
    sock.close();
  } catch {
    // Already closed (a failed bind closes it); nothing left to release.
  }
}
