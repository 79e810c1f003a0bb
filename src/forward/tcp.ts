// The TCP leg: a truncated UDP reply to a TCP client is fetched again over
// TCP (RFC 7766), as is a TCP client's query too large for a UDP datagram.
// One connection per attempt, closed after the reply, so no other query can
// share its ID; replies are framed with the 2-byte length and checked like
// UDP ones (a mismatch is skipped, only a timeout or error ends the attempt).

import net from 'node:net';
import { writeId } from '../wire/header.js';
import type { Server } from './health.js';

export interface TcpAttemptHandlers {
  /** True when the message is the reply (its copy is then handed to onReply). */
  readonly accept: (msg: Buffer) => boolean;
  readonly onReply: (reply: Buffer) => void;
  readonly onError: (err: Error) => void;
}

export function sendOverTcp(server: Server, query: Buffer, id: number, handlers: TcpAttemptHandlers): net.Socket {
  const frame = Buffer.allocUnsafe(2 + query.length);
  frame.writeUInt16BE(query.length, 0);
  query.copy(frame, 2);
  writeId(frame.subarray(2), id);

  const sock = net.connect({ host: server.host, port: server.port });
  sock.setNoDelay(true);
  let buffered: Buffer = Buffer.alloc(0);
  let done = false;
  sock.on('data', (chunk: Buffer) => {
    if (done) return;
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    while (buffered.length >= 2) {
      const len = buffered.readUInt16BE(0);
      if (buffered.length < 2 + len) break;
      const msg = buffered.subarray(2, 2 + len);
      buffered = buffered.subarray(2 + len);
      if (!handlers.accept(msg)) continue;
      done = true;
      // Copied: `msg` is a view into socket read buffers.
      handlers.onReply(Buffer.from(msg));
      return;
    }
  });
  const fail = (err: Error): void => {
    if (done) return;
    done = true;
    handlers.onError(err);
  };
  sock.on('error', fail);
  sock.on('close', () => fail(new Error('connection closed before a reply')));
  sock.write(frame);
  return sock;
}
