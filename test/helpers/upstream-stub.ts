// A small, real recursive-resolver stand-in for tests: UDP and TCP on the same
// loopback port, answers from a name → addresses table, and per-name
// misbehaviour (delay, silence, truncation, forged replies, rcodes) so the
// forwarder's RFC 5452 checks and failover can be exercised over real sockets.
//
// Replies are built with dns2's Packet (slow, but fine for tests). Everything
// the stub receives is recorded in `queries`, raw bytes included.
//
// Usage:
//   const stub = await startUpstreamStub({ records: { 'example.com': ['192.0.2.1'] } });
//   stub.setBehaviour('slow.example', { delayMs: 300 });
//   ... point the code under test at { host: stub.address, port: stub.port } ...
//   await stub.close();

import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIP, type Server, type Socket as TcpSocket } from 'node:net';
import { Packet } from 'dns2';

type DnsPacket = InstanceType<typeof Packet>;
type DnsQuestion = InstanceType<typeof Packet.Question>;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type RcodeName = keyof typeof RCODE;

/**
 * A forged reply sent *before* the genuine one (or instead of it, with
 * `drop`). Each carries an A record for `forgedAddress` so a test can tell
 * whether a forgery got through.
 * - wrongId: ID differs from the query's.
 * - wrongQuestion: question name differs ("forged-" prepended to the first label).
 * - wrongType: question type differs (A ↔ AAAA).
 * - otherPort: correct ID and question, but sent from a second UDP socket (UDP only).
 * - notResponse: correct ID and question, but QR=0.
 */
export type Forgery = 'wrongId' | 'wrongQuestion' | 'wrongType' | 'otherPort' | 'notResponse';

export interface StubBehaviour {
  /** Wait this long before the genuine reply (forgeries go out at once). */
  readonly delayMs?: number;
  /** Keep the genuine reply until release(name): a slow upstream whose answer the test lets go. */
  readonly hold?: boolean;
  /** Never send the genuine reply: over both transports (true) or only one. */
  readonly drop?: boolean | 'udp' | 'tcp';
  /** Over UDP answer with TC=1 and no records; over TCP send the full answer. */
  readonly truncateUdp?: boolean;
  /** Forged replies to send first (see Forgery). */
  readonly forge?: readonly Forgery[];
  /** The A record forged replies carry. Default 203.0.113.66. */
  readonly forgedAddress?: string;
  /** Answer with this rcode (no records unless NOERROR). */
  readonly rcode?: RcodeName | number;
  /** Echo the question name in this case instead of as asked. */
  readonly questionCase?: 'upper' | 'lower';
  /** TTL of this name's answers (default: the stub's `ttl`). */
  readonly ttl?: number;
  /** A records added to the additional section of a NOERROR answer (glue-like), each with its own TTL. */
  readonly additional?: ReadonlyArray<{ readonly name: string; readonly address: string; readonly ttl: number }>;
  /** Set AD in the reply (a validating resolver vouching for the data). */
  readonly ad?: boolean;
  /**
   * Answer an EDNS query with a DNS COOKIE (RFC 7873 §5.2.2): the reply's OPT
   * echoes the query's client cookie followed by an 8-octet server cookie.
   */
  readonly cookie?: boolean;
  /** Answer a query with RD=0 with this rcode instead (a resolver refusing non-recursive queries). */
  readonly norecRcode?: RcodeName;
  /**
   * Send a bare header (QDCOUNT 0, no records, no OPT) with the reply's ID,
   * QR and rcode: what a server that does not speak EDNS sends (RFC 6891 §7).
   */
  readonly noQuestion?: boolean;
}

export interface StubOptions {
  /** Default 127.0.0.1. */
  readonly address?: string;
  /** Default 0: an ephemeral port free for both UDP and TCP. */
  readonly port?: number;
  /**
   * Name (any case, trailing dot optional) → addresses. IPv4 addresses answer
   * A, IPv6 answer AAAA; ANY gets both. A known name without a record of the
   * asked type gets NOERROR/NODATA; an unknown name NXDOMAIN.
   */
  readonly records?: Readonly<Record<string, readonly string[]>>;
  /** TTL of every answer. Default 60. */
  readonly ttl?: number;
}

export interface StubQuery {
  /** As asked (case preserved), no trailing dot. */
  readonly name: string;
  readonly type: number;
  readonly id: number;
  /** The sender's address and source port. */
  readonly address: string;
  readonly port: number;
  readonly transport: 'udp' | 'tcp';
  /** The query carried an EDNS OPT record. */
  readonly edns: boolean;
  /** The message exactly as received (without the TCP length prefix). */
  readonly raw: Buffer;
}

export interface UpstreamStub {
  readonly address: string;
  readonly port: number;
  /** Every parseable query received, in arrival order. Clear with `queries.length = 0`. */
  readonly queries: StubQuery[];
  /** Set (or with undefined, clear) how the stub treats a name. */
  setBehaviour(name: string, behaviour: StubBehaviour | undefined): void;
  /** Set (or with undefined, remove) a name's addresses. */
  setRecords(name: string, addresses: readonly string[] | undefined): void;
  /** Sends the replies held for `name` (behaviour `hold`); returns how many went out. */
  release(name: string): number;
  close(): Promise<void>;
}

const TYPE_A = 1;
const TYPE_AAAA = 28;
const TYPE_ANY = 255;
const TYPE_OPT = 41;
const OPTION_COOKIE = 10;
const SERVER_COOKIE = Buffer.from('5e12e4c0ffee0001', 'hex');
const DEFAULT_FORGED = '203.0.113.66';

function key(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

export async function startUpstreamStub(opts: StubOptions = {}): Promise<UpstreamStub> {
  const address = opts.address ?? '127.0.0.1';
  const ttl = opts.ttl ?? 60;
  const family = isIP(address) === 6 ? 'udp6' : 'udp4';
  const records = new Map<string, readonly string[]>();
  for (const [name, addrs] of Object.entries(opts.records ?? {})) records.set(key(name), addrs);
  const behaviours = new Map<string, StubBehaviour>();
  /** name → replies held back by `hold`, sent by release(). */
  const held = new Map<string, Array<() => void>>();
  function answer(query: DnsPacket, b: StubBehaviour, send: () => void): void {
    if (b.hold === true) {
      const k = key(query.questions[0]!.name);
      held.set(k, [...(held.get(k) ?? []), send]);
      return;
    }
    later(b.delayMs ?? 0, send);
  }
  const queries: StubQuery[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const conns = new Set<TcpSocket>();
  let closed = false;

  const { udp, tcp, port } = await bindBoth(address, opts.port ?? 0, family);
  const other = createSocket(family);
  other.on('error', () => undefined);
  await new Promise<void>((res) => other.bind(0, address, res));

  function later(ms: number, fn: () => void): void {
    if (ms <= 0) {
      fn();
      return;
    }
    const t = setTimeout(() => {
      timers.delete(t);
      if (!closed) fn();
    }, ms);
    timers.add(t);
  }

  function buildReply(query: DnsPacket, raw: Buffer, b: StubBehaviour, forUdpLimit: number | null): Buffer {
    const q = query.questions[0]!;
    const rcode = b.rcode === undefined ? undefined : typeof b.rcode === 'number' ? b.rcode : RCODE[b.rcode];
    const addrs = records.get(key(q.name));
    const norec = b.norecRcode !== undefined && query.header.rd === 0 ? RCODE[b.norecRcode] : undefined;
    const effective = norec ?? rcode ?? (addrs === undefined ? RCODE.NXDOMAIN : RCODE.NOERROR);
    const cookie = b.cookie === true ? clientCookie(raw) : undefined;
    const reply = responseTo(query, echoName(q.name, b), q.type, effective, cookie === undefined);
    if (effective === RCODE.NOERROR && addrs !== undefined) {
      for (const a of addrs) {
        const t = isIP(a) === 6 ? TYPE_AAAA : TYPE_A;
        if (q.type === t || q.type === TYPE_ANY) {
          reply.answers.push(new Packet.Resource({ name: q.name, type: t, class: 1, ttl: b.ttl ?? ttl, address: a }));
        }
      }
      for (const x of b.additional ?? []) {
        reply.additionals.push(new Packet.Resource({ name: x.name, type: TYPE_A, class: 1, ttl: x.ttl, address: x.address }));
      }
    }
    const full = finishReply(reply.toBuffer(), b, cookie);
    if (forUdpLimit === null || (!b.truncateUdp && full.length <= forUdpLimit)) return full;
    // RFC 2181 §9: a truncated reply; ours carries no records at all.
    const tc = responseTo(query, echoName(q.name, b), q.type, effective, cookie === undefined);
    tc.header.tc = 1;
    return finishReply(tc.toBuffer(), b, cookie);
  }

  function forgedReply(query: DnsPacket, f: Forgery, b: StubBehaviour): Buffer {
    const q = query.questions[0]!;
    let name = q.name;
    let type = q.type;
    if (f === 'wrongQuestion') name = `forged-${q.name}`;
    if (f === 'wrongType') type = q.type === TYPE_AAAA ? TYPE_A : TYPE_AAAA;
    const reply = responseTo(query, name, type, RCODE.NOERROR);
    if (f === 'wrongId') reply.header.id = query.header.id ^ 0x5a5a;
    if (f === 'notResponse') reply.header.qr = 0;
    reply.answers.push(
      new Packet.Resource({ name: q.name, type: TYPE_A, class: 1, ttl, address: b.forgedAddress ?? DEFAULT_FORGED }),
    );
    return reply.toBuffer();
  }

  /** Parses and records a query; null for anything the stub ignores. */
  function accept(msg: Buffer, from: { address: string; port: number }, transport: 'udp' | 'tcp'): DnsPacket | null {
    let query: DnsPacket;
    try {
      query = Packet.parse(msg);
    } catch {
      return null;
    }
    const q = query.questions[0];
    if (query.header.qr === 1 || q === undefined) return null;
    queries.push({
      name: q.name,
      type: q.type,
      id: query.header.id,
      address: from.address,
      port: from.port,
      transport,
      edns: query.additionals.some((r) => r.type === TYPE_OPT),
      raw: Buffer.from(msg),
    });
    return query;
  }

  function behaviourFor(query: DnsPacket): StubBehaviour {
    return behaviours.get(key(query.questions[0]!.name)) ?? {};
  }

  udp.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    const query = accept(msg, rinfo, 'udp');
    if (query === null) return;
    const b = behaviourFor(query);
    const send = (sock: UdpSocket, buf: Buffer): void => {
      if (!closed) sock.send(buf, rinfo.port, rinfo.address, () => undefined);
    };
    for (const f of b.forge ?? []) send(f === 'otherPort' ? other : udp, forgedReply(query, f, b));
    if (b.drop === true || b.drop === 'udp') return;
    const opt = query.additionals.find((r) => r.type === TYPE_OPT);
    const limit = opt === undefined ? 512 : Math.max(512, opt.class);
    answer(query, b, () => send(udp, buildReply(query, msg, b, limit)));
  });

  tcp.on('connection', (sock: TcpSocket) => {
    conns.add(sock);
    sock.on('close', () => conns.delete(sock));
    sock.on('error', () => undefined);
    let buffered = Buffer.alloc(0);
    const from = { address: sock.remoteAddress ?? '', port: sock.remotePort ?? 0 };
    const write = (buf: Buffer): void => {
      if (closed || sock.destroyed) return;
      const len = Buffer.alloc(2);
      len.writeUInt16BE(buf.length);
      sock.write(Buffer.concat([len, buf]));
    };
    sock.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const msg = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
        buffered = buffered.subarray(2 + msg.length);
        const query = accept(msg, from, 'tcp');
        if (query === null) continue;
        const b = behaviourFor(query);
        for (const f of b.forge ?? []) if (f !== 'otherPort') write(forgedReply(query, f, b));
        if (b.drop === true || b.drop === 'tcp') continue;
        answer(query, b, () => write(buildReply(query, msg, b, null)));
      }
    });
  });

  return {
    address,
    port,
    queries,
    setBehaviour(name, behaviour) {
      if (behaviour === undefined) behaviours.delete(key(name));
      else behaviours.set(key(name), behaviour);
    },
    setRecords(name, addresses) {
      if (addresses === undefined) records.delete(key(name));
      else records.set(key(name), addresses);
    },
    release(name) {
      const waiting = held.get(key(name)) ?? [];
      held.delete(key(name));
      for (const send of waiting) if (!closed) send();
      return waiting.length;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const c of conns) c.destroy();
      await Promise.all([
        new Promise<void>((res) => udp.close(() => res())),
        new Promise<void>((res) => other.close(() => res())),
        new Promise<void>((res) => tcp.close(() => res())),
      ]);
    },
  };
}

function responseTo(query: DnsPacket, name: string, type: number, rcode: number, withOpt = true): DnsPacket {
  const q = query.questions[0]!;
  const reply = new Packet(
    new Packet.Header({ id: query.header.id, qr: 1, opcode: query.header.opcode, rd: query.header.rd, ra: 1, rcode }),
  );
  reply.questions.push(new Packet.Question(name, type, q.class) as DnsQuestion);
  if (withOpt && query.additionals.some((r) => r.type === TYPE_OPT)) {
    reply.additionals.push(Packet.Resource.EDNS([], { udpPayloadSize: 1232 }));
  }
  return reply;
}

/** Sets AD, and appends the OPT carrying the cookie (dns2 drops options it has no codec for). */
function finishReply(buf: Buffer, b: StubBehaviour, cookie: Buffer | undefined): Buffer {
  if (b.noQuestion === true) {
    const bare = Buffer.from(buf.subarray(0, 12));
    bare.fill(0, 4, 12);
    return bare;
  }
  if (b.ad === true) buf[3] = buf[3]! | 0x20;
  if (cookie === undefined) return buf;
  const value = Buffer.concat([cookie, SERVER_COOKIE]);
  const opt = Buffer.alloc(11 + 4 + value.length);
  opt.writeUInt16BE(TYPE_OPT, 1);
  opt.writeUInt16BE(1232, 3);
  opt.writeUInt16BE(4 + value.length, 9);
  opt.writeUInt16BE(OPTION_COOKIE, 11);
  opt.writeUInt16BE(value.length, 13);
  value.copy(opt, 15);
  const out = Buffer.concat([buf, opt]);
  out.writeUInt16BE(out.readUInt16BE(10) + 1, 10);
  return out;
}

/**
 * The client cookie (first 8 octets of the COOKIE option) of a query's OPT,
 * read from its raw bytes: undefined when it has none. Queries here are
 * uncompressed, one question, the OPT among the additional records.
 */
export function clientCookie(raw: Buffer): Buffer | undefined {
  for (const o of optOptions(raw)) if (o.code === OPTION_COOKIE && o.data.length >= 8) return o.data.subarray(0, 8);
  return undefined;
}

/** The EDNS options of a message's OPT record (any message, compression allowed in owner names). */
export function optOptions(raw: Buffer): Array<{ code: number; data: Buffer }> {
  const skipName = (at: number): number => {
    while (at < raw.length) {
      const len = raw[at]!;
      if (len === 0) return at + 1;
      if ((len & 0xc0) === 0xc0) return at + 2;
      at += 1 + len;
    }
    return at;
  };
  let at = 12;
  for (let i = 0; i < raw.readUInt16BE(4); i++) at = skipName(at) + 4;
  const records = raw.readUInt16BE(6) + raw.readUInt16BE(8) + raw.readUInt16BE(10);
  for (let i = 0; i < records && at < raw.length; i++) {
    at = skipName(at);
    const type = raw.readUInt16BE(at);
    const rdlength = raw.readUInt16BE(at + 8);
    const rdata = at + 10;
    if (type === TYPE_OPT) {
      const out: Array<{ code: number; data: Buffer }> = [];
      for (let o = rdata; o + 4 <= rdata + rdlength; ) {
        const len = raw.readUInt16BE(o + 2);
        out.push({ code: raw.readUInt16BE(o), data: raw.subarray(o + 4, o + 4 + len) });
        o += 4 + len;
      }
      return out;
    }
    at = rdata + rdlength;
  }
  return [];
}

function echoName(name: string, b: StubBehaviour): string {
  if (b.questionCase === 'upper') return name.toUpperCase();
  if (b.questionCase === 'lower') return name.toLowerCase();
  return name;
}

/** UDP first (it picks the port when asked for 0), then TCP on the same number. */
async function bindBoth(
  address: string,
  port: number,
  family: 'udp4' | 'udp6',
): Promise<{ udp: UdpSocket; tcp: Server; port: number }> {
  for (let tries = 0; ; tries++) {
    // A large receive buffer (the kernel caps it at rmem_max) so a burst of
    // queries from a load test is not dropped before the stub reads it.
    const udp = createSocket({ type: family, recvBufferSize: 4 << 20 });
    await new Promise<void>((res, rej) => {
      udp.once('error', rej);
      udp.bind(port, address, () => {
        udp.off('error', rej);
        res();
      });
    });
    udp.on('error', () => undefined);
    const chosen = udp.address().port;
    const tcp = createServer();
    try {
      await new Promise<void>((res, rej) => {
        tcp.once('error', rej);
        tcp.listen(chosen, address, () => {
          tcp.off('error', rej);
          res();
        });
      });
      return { udp, tcp, port: chosen };
    } catch (err) {
      // Only a randomly chosen port can be re-rolled; a fixed one is an error.
      await new Promise<void>((res) => udp.close(() => res()));
      if (port !== 0 || tries >= 20) throw err;
    }
  }
}
