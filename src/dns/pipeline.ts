// The query path: parse → admit → answer from a private zone, or forward →
// encode. Everything here reads the current state synchronously; only the
// forward leg awaits, and it awaits the upstream resolver, never EC2.

import type { Template, ZoneAnswers } from '../zone/answers.js';
import type { Admit } from './admit.js';
import { headerOnlyReply, relayUpstreamReply, replyFromTemplate, type Transport } from './encode.js';
import { CLASS_ANY, CLASS_IN, RCODE, TYPE, parseQuery, type Query } from './message.js';

export interface Client {
  readonly address: string;
  readonly port: number;
  readonly transport: Transport;
}

/** The upstream leg as the pipeline sees it (implemented in src/forward). */
export interface Forwarder {
  resolve(query: Buffer, viaTcp: boolean): Promise<Buffer>;
}

/** Everything a query needs, swapped as a whole on reload or a new snapshot. */
export interface PipelineState {
  readonly zones: ZoneAnswers;
  readonly admit: Admit;
  readonly forwarder: Forwarder;
}

export type Reply = Buffer | null;

export class Pipeline {
  private rotation = 0;

  constructor(public state: PipelineState) {}

  /** Returns the reply bytes, a promise of them, or null to send nothing. */
  handle(msg: Buffer, client: Client): Reply | Promise<Reply> {
    const parsed = parseQuery(msg);
    if (parsed.kind === 'drop') return null;
    const state = this.state;
    if (parsed.kind === 'error') {
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
    if (!state.admit(client.address)) return this.headerOnly(msg, q, RCODE.REFUSED);

    const zone = state.zones.zoneOf(q.name);
    if (zone !== undefined) {
      // A private name is answered here or refused; it is never forwarded.
      if (q.qclass !== CLASS_IN && q.qclass !== CLASS_ANY) return this.headerOnly(msg, q, RCODE.REFUSED);
      if (q.type === TYPE.AXFR || q.type === TYPE.IXFR) return this.headerOnly(msg, q, RCODE.REFUSED);
      return this.fromTemplate(state.zones.answer(zone, q.name, q.type), msg, q, client.transport);
    }
    if (q.type === TYPE.PTR && state.zones.ownsReverse(q.name)) {
      return this.fromTemplate(state.zones.answerReverse(q.name), msg, q, client.transport);
    }

    return state.forwarder.resolve(msg, client.transport === 'tcp').then(
      (reply) => relayUpstreamReply(reply, msg, q, client.transport),
      () => this.headerOnly(msg, q, RCODE.SERVFAIL),
    );
  }

  private fromTemplate(t: Template, msg: Buffer, q: Query, transport: Transport): Buffer {
    // A name with an escaped label ("." or "\" inside a label) was encoded
    // from its escaped text, so its cached question is longer than the
    // client's: such names get the bare rcode. (No configured name has one.)
    if (q.name.includes('\\')) {
      return this.headerOnly(msg, q, t.bytes[3]! & 0x0f, (t.bytes[2]! & 0x04) !== 0);
    }
    const out = replyFromTemplate(t.bytes, msg, q, transport);
    if (t.rotate !== undefined && out.length >= t.bytes.length) {
      rotateRecords(out, t.bytes, t.rotate, this.rotation++);
    }
    return out;
  }

  private headerOnly(msg: Buffer, q: Query, rcode: number, aa = false): Buffer {
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
  return reply !== null && !Buffer.isBuffer(reply);
}
