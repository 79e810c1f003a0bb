// A test-side DNS client over real sockets. dns2's Packet builds and reads
// messages here (tests can afford it); the bytes travel over real UDP/TCP.

import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import dns2 from 'dns2';

export const { Packet } = dns2;
export type Packet = InstanceType<typeof Packet>;

export interface QueryOptions {
  readonly host?: string;
  readonly transport?: 'udp' | 'tcp';
  /** EDNS UDP payload size, or false (default) for a plain query. */
  readonly edns?: number | false;
  readonly dnssecOk?: boolean;
  readonly id?: number;
  readonly rd?: boolean;
  readonly qclass?: number;
  readonly timeoutMs?: number;
  /** UDP: send from this local address (another 127.x address, to be a different client). */
  readonly from?: string;
  /** An 8-octet client cookie (RFC 7873) sent in an EDNS COOKIE option (implies EDNS, 1232 unless `edns` says). */
  readonly cookie?: Buffer;
}

export function buildQuery(name: string, type: number | string, opts: QueryOptions = {}): Buffer {
  const code = typeof type === 'string' ? (Packet.TYPE as Record<string, number>)[type]! : type;
  const packet = new Packet({
    id: opts.id ?? 0x1234,
    qr: 0,
    opcode: 0,
    aa: 0,
    tc: 0,
    rd: opts.rd === false ? 0 : 1,
    ra: 0,
    z: 0,
    rcode: 0,
  } as unknown as InstanceType<typeof Packet.Header>);
  packet.questions.push(new Packet.Question(name, code, opts.qclass ?? 1));
  if (opts.cookie !== undefined) {
    // dns2 has no codec for COOKIE (it would drop it): the OPT is written here.
    const opt = Buffer.alloc(11 + 4 + opts.cookie.length);
    opt.writeUInt16BE(41, 1);
    opt.writeUInt16BE(opts.edns === undefined || opts.edns === false ? 1232 : opts.edns, 3);
    if (opts.dnssecOk === true) opt[7] = 0x80;
    opt.writeUInt16BE(4 + opts.cookie.length, 9);
    opt.writeUInt16BE(10, 11);
    opt.writeUInt16BE(opts.cookie.length, 13);
    opts.cookie.copy(opt, 15);
    const out = Buffer.concat([packet.toBuffer(), opt]);
    out.writeUInt16BE(out.readUInt16BE(10) + 1, 10);
    return out;
  }
  if (opts.edns !== undefined && opts.edns !== false) {
    packet.additionals.push(
      Packet.Resource.EDNS([], { udpPayloadSize: opts.edns, doFlag: opts.dnssecOk === true }) as unknown as InstanceType<typeof Packet.Resource>,
    );
  }
  return packet.toBuffer();
}

/** Sends raw bytes over UDP; resolves with the reply, or null after the timeout. */
export function sendUdp(port: number, bytes: Buffer, opts: { host?: string; timeoutMs?: number; from?: string } = {}): Promise<Buffer | null> {
  const host = opts.host ?? '127.0.0.1';
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  if (opts.from !== undefined) socket.bind(0, opts.from);
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(null), opts.timeoutMs ?? 2000);
    const finish = (reply: Buffer | null): void => {
      clearTimeout(timer);
      socket.close();
      resolve(reply);
    };
    socket.on('message', (msg) => finish(msg));
    socket.on('error', () => finish(null));
    socket.send(bytes, port, host);
  });
}

/**
 * Sends messages on one TCP connection (framed unless `raw`); resolves once
 * `expect` replies (default: one per message) arrived, or with fewer on close
 * or timeout.
 */
export function sendTcp(
  port: number,
  messages: readonly Buffer[],
  opts: { host?: string; timeoutMs?: number; raw?: boolean; expect?: number } = {},
): Promise<Buffer[]> {
  const host = opts.host ?? '127.0.0.1';
  return new Promise((resolve) => {
    const replies: Buffer[] = [];
    let pending = Buffer.alloc(0);
    const socket = connect({ host, port });
    const timer = setTimeout(() => finish(), opts.timeoutMs ?? 2000);
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(replies);
    };
    socket.setNoDelay(true);
    socket.on('connect', () => {
      if (opts.raw) {
        // Raw pieces go out as separate segments, a tick apart, to exercise reassembly.
        messages.forEach((m, i) => setTimeout(() => socket.write(m), i * 20));
        return;
      }
      for (const m of messages) {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(m.length);
        socket.write(Buffer.concat([len, m]));
      }
    });
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const len = pending.readUInt16BE(0);
        replies.push(pending.subarray(2, 2 + len));
        pending = pending.subarray(2 + len);
      }
      if (replies.length >= (opts.expect ?? messages.length)) finish();
    });
    socket.on('close', finish);
    socket.on('error', finish);
  });
}

export interface Answer {
  readonly raw: Buffer;
  readonly packet: Packet;
  readonly rcode: number;
  readonly flags: { qr: boolean; aa: boolean; tc: boolean; rd: boolean; ra: boolean };
  /** A-record addresses in the answer section, in wire order. */
  readonly addresses: string[];
}

export function decode(raw: Buffer): Answer {
  const packet = Packet.parse(raw);
  const h = packet.header;
  return {
    raw,
    packet,
    rcode: h.rcode,
    flags: { qr: h.qr === 1, aa: h.aa === 1, tc: h.tc === 1, rd: h.rd === 1, ra: h.ra === 1 },
    addresses: packet.answers.filter((r) => r.type === Packet.TYPE.A).map((r) => r.address!),
  };
}

/** One query, decoded; throws if no reply arrives. */
export async function query(port: number, name: string, type: number | string = 'A', opts: QueryOptions = {}): Promise<Answer> {
  const bytes = buildQuery(name, type, opts);
  const raw =
    opts.transport === 'tcp'
      ? (await sendTcp(port, [bytes], { host: opts.host, timeoutMs: opts.timeoutMs }))[0] ?? null
      : await sendUdp(port, bytes, { host: opts.host, timeoutMs: opts.timeoutMs, from: opts.from });
  if (raw === null || raw === undefined) throw new Error(`no reply to ${name} ${String(type)} over ${opts.transport ?? 'udp'}`);
  return decode(raw);
}
