// The query path: parse → admit → answer from a private zone, or forward →
// encode. Everything here reads the current state synchronously; only the
// forward leg may await, and it awaits the upstream resolver, never EC2.

import type { Forwarder, ForwardRequest } from '../forward/forwarder.js';
import { CLASS, RCODE, TYPE } from '../wire/codes.js';
import { AA, headerRcode } from '../wire/header.js';
import { parseQuery, type Query } from '../wire/query.js';
import { fitUdp, headerOnlyReply, replyFromTemplate, type Transport } from '../wire/reply.js';
import type { Template, ZoneAnswers } from '../zone/answers.js';
import type { Admit } from './admit.js';
import { PipelineStats } from './stats.js';

export interface Client {
  readonly address: string;
  readonly port: number;
  readonly transport: Transport;
}

/** What src/transfer offers the pipeline: zone transfers, NOTIFY and TSIG-signed queries. */
export interface TransferHandler {
  /** `plain` gives the answer this query would get without its TSIG record. */
  handle(msg: Buffer, q: Query, client: Client, plain: () => Reply | Promise<Reply>): Reply | Promise<Reply>;
  /** A secondary's SOA check from outside acl.allow but inside the zone's transfer.allow. */
  admitsSerialCheck(q: Query, address: string): boolean;
}

/** Everything a query needs, swapped as a whole on reload or a new snapshot. */
export interface PipelineState {
  readonly zones: ZoneAnswers;
  readonly admit: Admit;
  readonly forwarder: Forwarder;
  readonly transfer?: TransferHandler;
}

/** One message, several (a zone transfer over TCP), or nothing to send. */
export type Reply = Buffer | Buffer[] | null;

/** Opcode bits of header bytes 2–3: anything but QUERY goes to the transfer room. */
const OPCODE_BITS = 0x7800;

export class Pipeline {
  readonly stats = new PipelineStats();
  private rotation = 0;

  constructor(public state: PipelineState) {}

  /** Returns the reply bytes, a promise of them, or null to send nothing. */
  handle(msg: Buffer, client: Client): Reply | Promise<Reply> {
    const stats = this.stats;
    stats.requests[client.transport]++;
    const parsed = parseQuery(msg);
    if (parsed.kind === 'drop') {
      stats.dropped++;
      return null;
    }
    const state = this.state;
    if (parsed.kind === 'error') {
      stats.replied('local', parsed.rcode);
      return headerOnlyReply(msg, {
        id: parsed.id,
        queryFlags: parsed.flags,
        rcode: parsed.rcode,
        questionEnd: parsed.questionEnd,
        edns: parsed.edns,
        ra: true,
      });
    }
    const q = parsed.query;
    if (q.tsig !== undefined || q.type === TYPE.AXFR || q.type === TYPE.IXFR || (q.flags & OPCODE_BITS) !== 0) {
      // Transfers, NOTIFY and signed queries have their own access rules (src/transfer).
      const transfer = state.transfer;
      if (transfer !== undefined) return transfer.handle(msg, q, client, () => this.route(msg, q, client, state));
      if ((q.flags & OPCODE_BITS) !== 0) return this.local(msg, q, RCODE.NOTIMP);
    }
    return this.route(msg, q, client, state);
  }

  private route(msg: Buffer, q: Query, client: Client, state: PipelineState): Reply | Promise<Reply> {
    if (!state.admit(client.address) && state.transfer?.admitsSerialCheck(q, client.address) !== true) {
      this.stats.aclRefused++;
      return this.local(msg, q, RCODE.REFUSED);
    }

    const zone = state.zones.zoneOf(q.name);
    if (zone !== undefined) {
      // A private name is answered here or refused; it is never forwarded.
      if (q.qclass !== CLASS.IN && q.qclass !== CLASS.ANY) return this.local(msg, q, RCODE.REFUSED);
      if (q.type === TYPE.AXFR || q.type === TYPE.IXFR) return this.local(msg, q, RCODE.REFUSED);
      return this.fromTemplate(state.zones.answer(zone, q.name, q.type), msg, q, client.transport);
    }
    if (q.type === TYPE.PTR && state.zones.ownsReverse(q.name)) {
      return this.fromTemplate(state.zones.answerReverse(q.name), msg, q, client.transport);
    }
    return this.forward(state.forwarder, msg, q, client.transport);
  }

  private forward(forwarder: Forwarder, msg: Buffer, q: Query, transport: Transport): Reply | Promise<Reply> {
    const req: ForwardRequest = { msg, query: q, viaTcp: transport === 'tcp', source: 'upstream' };
    const stats = this.stats;
    // A forward that fails is the upstream's SERVFAIL, whichever layer gave up.
    const failed = (): Buffer => {
      stats.replied(req.source, RCODE.SERVFAIL);
      return this.headerOnly(msg, q, RCODE.SERVFAIL, false);
    };
    let result;
    try {
      result = forwarder.resolve(req);
    } catch {
      return failed();
    }
    if (Buffer.isBuffer(result)) {
      stats.replied(req.source, headerRcode(result));
      return fitUdp(result, msg, q, transport);
    }
    stats.pending++;
    return result.then(
      (reply) => {
        stats.pending--;
        stats.replied(req.source, headerRcode(reply));
        return fitUdp(reply, msg, q, transport);
      },
      () => {
        stats.pending--;
        return failed();
      },
    );
  }

  private fromTemplate(t: Template, msg: Buffer, q: Query, transport: Transport): Buffer {
    // A name with an escaped label ("." or "\" inside a label) was encoded
    // from its escaped text, so its cached question is longer than the
    // client's: such names get the bare rcode. (No configured name has one.)
    this.stats.replied('zone', headerRcode(t.bytes));
    if (q.name.includes('\\')) return this.headerOnly(msg, q, headerRcode(t.bytes), (t.bytes[2]! & AA) !== 0);
    const out = replyFromTemplate(t.bytes, msg, q);
    if (t.rotate !== undefined) rotateRecords(out, t.bytes, t.rotate, this.rotation++);
    return fitUdp(out, msg, q, transport);
  }

  private local(msg: Buffer, q: Query, rcode: number): Buffer {
    this.stats.replied('local', rcode);
    return this.headerOnly(msg, q, rcode, false);
  }

  private headerOnly(msg: Buffer, q: Query, rcode: number, aa: boolean): Buffer {
    return headerOnlyReply(msg, { id: q.id, queryFlags: q.flags, rcode, questionEnd: q.questionEnd, edns: q.edns, ra: true, aa });
  }
}

/** Round-robin: the k-th reply starts its A records at record k mod count. */
function rotateRecords(out: Buffer, template: Buffer, r: NonNullable<Template['rotate']>, k: number): void {
  const shift = k % r.count;
  if (shift === 0) return;
  const head = (r.count - shift) * r.size;
  template.copy(out, r.start, r.start + shift * r.size, r.start + r.count * r.size);
  template.copy(out, r.start + head, r.start, r.start + shift * r.size);
}

export function isPending(reply: Reply | Promise<Reply>): reply is Promise<Reply> {
  return reply instanceof Promise;
}
