// The query path: parse → admit → answer from a private zone, or forward →
// encode. Everything here reads the current state synchronously; only the
// forward leg may await, and it awaits the upstream resolver, never EC2.

import { performance } from 'node:perf_hooks';
import { UpstreamError } from '../forward/errors.js';
import type { Forwarder, ForwardRequest } from '../forward/forwarder.js';
import { CLASS, OPCODE, RCODE, TYPE } from '../wire/codes.js';
import { AA, headerRcode, opcodeOfFlags } from '../wire/header.js';
import { parseQuery, type Query } from '../wire/query.js';
import { fitUdp, headerOnlyReply, rcodeReply, replyFromTemplate, type Transport } from '../wire/reply.js';
import type { Template, ZoneAnswers } from '../zone/answers.js';
import type { Admit } from './admit.js';
import { PipelineStats, type ReplySource } from './stats.js';

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

/**
 * The request-duration histogram's inputs: one sink per reply source (the
 * admin registry fills them with prebound prom-client children, so this room
 * never imports prom-client) and the sampling rate. Only 1 query in `every`
 * is timed, whatever its source: two clock reads and one observe cost ~0.3 µs,
 * about 4 % of a private answer, while 1 in 16 costs a counter and a mask.
 */
export interface RequestTiming {
  readonly observe: Readonly<Record<ReplySource, (seconds: number) => void>>;
  /** A power of two. */
  readonly every: number;
}

export class Pipeline {
  readonly stats = new PipelineStats();
  private rotation = 0;
  private timing: { readonly observe: RequestTiming['observe']; readonly mask: number } | undefined;
  private tick = 0;
  /** performance.now() at the start of the query being handled, when it is sampled; else 0. */
  private t0 = 0;

  constructor(public state: PipelineState) {}

  /** Starts (or with undefined, stops) timing sampled queries. */
  setTiming(timing: RequestTiming | undefined): void {
    if (timing !== undefined && (!Number.isInteger(timing.every) || timing.every < 1 || (timing.every & (timing.every - 1)) !== 0)) {
      throw new RangeError(`request timing: every must be a power of two, got ${timing.every}`);
    }
    this.timing = timing && { observe: timing.observe, mask: timing.every - 1 };
    this.t0 = 0;
  }

  /** Returns the reply bytes, a promise of them, or null to send nothing. */
  handle(msg: Buffer, client: Client): Reply | Promise<Reply> {
    const stats = this.stats;
    stats.requests[client.transport]++;
    const timing = this.timing;
    if (timing !== undefined) this.t0 = (++this.tick & timing.mask) === 0 ? performance.now() : 0;
    const parsed = parseQuery(msg);
    if (parsed.kind === 'drop') {
      stats.dropped++;
      return null;
    }
    const state = this.state;
    if (parsed.kind === 'error') {
      this.replied('local', parsed.rcode);
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
    // Anything but opcode QUERY (NOTIFY) goes to the transfer room, too.
    const notQuery = opcodeOfFlags(q.flags) !== OPCODE.QUERY;
    if (q.tsig !== undefined || q.type === TYPE.AXFR || q.type === TYPE.IXFR || notQuery) {
      // Transfers, NOTIFY and signed queries have their own access rules (src/transfer).
      const transfer = state.transfer;
      if (transfer !== undefined) return transfer.handle(msg, q, client, () => this.route(msg, q, client, state));
      if (notQuery) return this.local(msg, q, RCODE.NOTIMP);
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

  /** Counts a reply sent now (synchronously), and times it when this query is sampled. */
  private replied(source: ReplySource, rcode: number): void {
    this.stats.replied(source, rcode);
    if (this.t0 !== 0) {
      this.timing?.observe[source]((performance.now() - this.t0) / 1000);
      this.t0 = 0;
    }
  }

  private forward(forwarder: Forwarder, msg: Buffer, q: Query, transport: Transport): Reply | Promise<Reply> {
    const req: ForwardRequest = { msg, query: q, viaTcp: transport === 'tcp', source: 'upstream' };
    const stats = this.stats;
    // A forward that fails is the upstream's SERVFAIL, whichever layer gave up.
    const servfail = (err: unknown): Buffer => {
      stats.forwardFailed(err instanceof UpstreamError ? err.code : 'Error');
      return rcodeReply(msg, q, RCODE.SERVFAIL, false);
    };
    let result;
    try {
      result = forwarder.resolve(req);
    } catch (err) {
      this.replied(req.source, RCODE.SERVFAIL);
      return servfail(err);
    }
    if (Buffer.isBuffer(result)) {
      this.replied(req.source, headerRcode(result));
      return fitUdp(result, msg, q, transport);
    }
    // Answered later: this query's start time goes with it.
    const t0 = this.t0;
    this.t0 = 0;
    const done = (rcode: number): void => {
      stats.pending--;
      stats.replied(req.source, rcode);
      if (t0 !== 0) this.timing?.observe[req.source]((performance.now() - t0) / 1000);
    };
    stats.pending++;
    return result.then(
      (reply) => {
        done(headerRcode(reply));
        return fitUdp(reply, msg, q, transport);
      },
      (err: unknown) => {
        done(RCODE.SERVFAIL);
        return servfail(err);
      },
    );
  }

  private fromTemplate(t: Template, msg: Buffer, q: Query, transport: Transport): Buffer {
    // A name with an escaped label ("." or "\" inside a label) was encoded
    // from its escaped text, so its cached question is longer than the
    // client's: such names get the bare rcode. (No configured name has one.)
    this.replied('zone', headerRcode(t.bytes));
    if (q.name.includes('\\')) return rcodeReply(msg, q, headerRcode(t.bytes), (t.bytes[2]! & AA) !== 0);
    const out = replyFromTemplate(t.bytes, msg, q);
    if (t.rotate !== undefined) rotateRecords(out, t.bytes, t.rotate, this.rotation++);
    return fitUdp(out, msg, q, transport);
  }

  private local(msg: Buffer, q: Query, rcode: number): Buffer {
    this.replied('local', rcode);
    return rcodeReply(msg, q, rcode, false);
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
