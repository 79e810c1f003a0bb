// Message builders for the forwarder tests; dns2 is fine here (not hot path).
import { Packet } from 'dns2';
import type { ForwardRequest } from '../../src/forward/forwarder.js';
import { parseQuery } from '../../src/wire/query.js';

export type DnsPacket = InstanceType<typeof Packet>;

export function buildQuery(name: string, opts: { type?: number; id?: number; edns?: number } = {}): Buffer {
  const p = new Packet(new Packet.Header({ id: opts.id ?? 0x1234, rd: 1 }));
  p.questions.push(new Packet.Question(name, opts.type ?? 1, 1));
  if (opts.edns !== undefined) p.additionals.push(Packet.Resource.EDNS([], { udpPayloadSize: opts.edns }));
  return p.toBuffer();
}

export function parse(msg: Buffer): DnsPacket {
  return Packet.parse(msg);
}

export function addresses(msg: Buffer): string[] {
  return parse(msg).answers.map((r) => r.address ?? '');
}

/** A query whose OPT carries `padding` octets of RFC 7830 padding. */
export function paddedQuery(name: string, padding: number, id = 0x4242): Buffer {
  const base = buildQuery(name, { id });
  const opt = Buffer.alloc(11 + 4 + padding);
  opt.writeUInt16BE(41, 1); // TYPE OPT, owner root
  opt.writeUInt16BE(1232, 3); // UDP size
  opt.writeUInt16BE(4 + padding, 9); // RDLENGTH
  opt.writeUInt16BE(12, 11); // option PADDING
  opt.writeUInt16BE(padding, 13);
  const msg = Buffer.concat([base, opt]);
  msg.writeUInt16BE(1, 10); // ARCOUNT
  return msg;
}

/** What the pipeline hands the forward chain: the bytes, parsed once. */
export function request(msg: Buffer, viaTcp: boolean): ForwardRequest {
  const parsed = parseQuery(msg);
  if (parsed.kind !== 'query') throw new Error(`test query does not parse: ${parsed.kind}`);
  return { msg, query: parsed.query, viaTcp, source: 'upstream' };
}
