// DNS over TCP's framing (RFC 1035 §4.2.2, RFC 7766 §8): each message goes
// with a 2-octet length in front. One copy for every TCP user (the server's
// listener, the upstream's TCP retry, zone transfers), since a frame split
// across reads, or several in one read, is where hand-written loops go wrong.

/** `msg` with its 2-octet length in front (a new buffer). */
export function frame(msg: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(2 + msg.length);
  out.writeUInt16BE(msg.length, 0);
  out.set(msg, 2);
  return out;
}

/**
 * Reassembles messages from a byte stream. The messages it returns are views
 * into the chunks it was given (no copy): copy one that must outlive them.
 */
export class Deframer {
  private pending: Buffer = Buffer.alloc(0);

  /** Appends a chunk read from the stream; returns every message now complete, in order. */
  push(chunk: Buffer): Buffer[] {
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) break;
      out.push(buf.subarray(2, 2 + len));
      buf = buf.subarray(2 + len);
    }
    this.pending = buf;
    return out;
  }

  /** Octets of an incomplete message held back. */
  get buffered(): number {
    return this.pending.length;
  }
}
