// The two exchanges a transfer peer makes: a request over TCP answered by a
// stream of framed messages (AXFR/IXFR, RFC 7766), and a datagram answered by
// one datagram (NOTIFY). Each has deadlines that only the exchange can end:
// connect, silence between messages, and the whole transfer, so a primary
// that stalls or trickles can never wedge a secondary.

import { createSocket } from 'node:dgram';
import { connect, isIPv6 } from 'node:net';
import { showHostPort } from '../config/net.js';
import type { HostPort } from '../config/types.js';
import { createAdmit, hostCidr } from '../dns/admit.js';
import { TransferError } from './incoming.js';
import { Deframer, frame } from '../wire/framing.js';

export interface StreamTimeouts {
  readonly connectMs: number;
  /** Longest silence while an answer is incomplete. */
  readonly idleMs: number;
  /** The whole exchange. */
  readonly totalMs: number;
}

export const DEFAULT_STREAM_TIMEOUTS: StreamTimeouts = { connectMs: 5_000, idleMs: 10_000, totalMs: 300_000 };

const hostPort = showHostPort;

/**
 * Sends `request` over a new TCP connection and hands every framed reply to
 * `onMessage` until it returns true. Rejects with TransferError on a timeout,
 * a reset, a frame over 64 KiB (impossible) or a close mid-answer; rejects
 * with whatever onMessage throws.
 */
export function tcpExchange(
  target: HostPort,
  request: Buffer,
  onMessage: (msg: Buffer) => boolean,
  timeouts: StreamTimeouts = DEFAULT_STREAM_TIMEOUTS,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: target.host, port: target.port, noDelay: true });
    const deframer = new Deframer();
    let settled = false;
    // Failing before the connection is up means the primary is unreachable
    // (TransferError.transport); after, it is this request that failed.
    let connected = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(total);
      clearTimeout(connecting);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (err === undefined) resolve();
      else reject(err);
    };
    const onAbort = (): void => finish(new TransferError('stopped'));
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    const total = setTimeout(() => finish(new TransferError(`transfer from ${hostPort(target)} took over ${timeouts.totalMs} ms`, undefined, !connected)), timeouts.totalMs);
    const connecting = setTimeout(() => finish(new TransferError(`connect to ${hostPort(target)} timed out`, undefined, true)), timeouts.connectMs);
    socket.on('connect', () => {
      connected = true;
      clearTimeout(connecting);
      socket.setTimeout(timeouts.idleMs, () => finish(new TransferError(`${hostPort(target)} silent for ${timeouts.idleMs} ms`)));
      socket.write(frame(request));
    });
    socket.on('data', (chunk: Buffer) => {
      for (const msg of deframer.push(chunk)) {
        if (settled) return;
        let done: boolean;
        try {
          done = onMessage(msg);
        } catch (err) {
          finish(err as Error);
          return;
        }
        if (done) {
          finish();
          return;
        }
      }
    });
    socket.on('error', (err) => finish(new TransferError(`${hostPort(target)}: ${err.message}`, undefined, !connected)));
    socket.on('close', () => finish(new TransferError(`${hostPort(target)} closed the connection mid-answer`, undefined, !connected)));
  });
}

/**
 * Sends one datagram from a fresh socket (a new random source port) and waits
 * for a reply from the target that `accept` takes. Resolves undefined when
 * none came within `timeoutMs`.
 */
export function udpExchange(target: HostPort, request: Buffer, accept: (msg: Buffer) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket(isIPv6(target.host) ? 'udp6' : 'udp4');
    let settled = false;
    const finish = (reply: Buffer | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.close();
      resolve(reply);
    };
    const onAbort = (): void => finish(undefined);
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('error', () => finish(undefined));
    const fromTarget = createAdmit([hostCidr(target.host)]);
    socket.on('message', (msg, rinfo) => {
      // Only the target may answer (a spoofed ack would silence the retries).
      if (rinfo.port !== target.port || !fromTarget(rinfo.address)) return;
      if (accept(msg)) finish(Buffer.from(msg));
    });
    socket.send(request, target.port, target.host, (err) => {
      if (err) finish(undefined);
    });
  });
}
