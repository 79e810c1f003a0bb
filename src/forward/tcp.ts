// The TCP leg: a truncated UDP reply to a TCP client is fetched again over
// TCP (RFC 7766), as is a TCP client's query too large for a UDP datagram.
// One connection per attempt, closed after the reply, so no other query can
// share its ID; replies are framed with the 2-byte length and checked like
// UDP ones (a mismatch is skipped, only a timeout or error ends the attempt).

import net from 'node:net';
import { Deframer, frame } from '../wire/framing.js';
import { writeId } from '../wire/header.js';
import type { Server } from './health.js';

export interface TcpAttemptHandlers {
  /** True when the message is the reply (its copy is then handed to onReply). */
  readonly accept: (msg: Buffer) => boolean;
  readonly onReply: (reply: Buffer) => void;
  readonly onError: (err: Error) => void;
}

export function sendOverTcp(server: Server, query: Buffer, id: number, handlers: TcpAttemptHandlers): net.Socket {
  const framed = frame(query);
  writeId(framed.subarray(2), id);

  const sock = net.connect({ host: server.host, port: server.port });
  sock.setNoDelay(true);
  const deframer = new Deframer();
  let done = false;
  sock.on('data', (chunk: Buffer) => {
    if (done) return;
    for (const msg of deframer.push(chunk)) {
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
  sock.write(framed);
  return sock;
}
