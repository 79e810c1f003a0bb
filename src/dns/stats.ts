// The pipeline's counters: plain numbers bumped on the query path and read by
// whoever asks (the metrics registry, when scraped). Nothing here formats or
// allocates per query.

import type { AnswerSource } from '../forward/forwarder.js';
import type { Transport } from '../wire/reply.js';

/** Where a reply came from: a private zone, the forward chain, or the pipeline itself (refusals, FORMERR, NOTIMP). */
export type ReplySource = 'zone' | AnswerSource | 'local';

export const REPLY_SOURCES: readonly ReplySource[] = ['zone', 'cache', 'stale', 'upstream', 'local'];

/** RCODE values are 12 bits with EDNS; the header's 4 plus BADVERS (16) cover what we send. */
const RCODE_SLOTS = 32;

export class PipelineStats {
  readonly requests: Record<Transport, number> = { udp: 0, tcp: 0 };
  /** responses[source][rcode]: replies sent, by where they came from and their rcode. */
  readonly responses: Record<ReplySource, number[]> = {
    zone: new Array<number>(RCODE_SLOTS).fill(0),
    cache: new Array<number>(RCODE_SLOTS).fill(0),
    stale: new Array<number>(RCODE_SLOTS).fill(0),
    upstream: new Array<number>(RCODE_SLOTS).fill(0),
    local: new Array<number>(RCODE_SLOTS).fill(0),
  };
  /** Queries refused because the client is outside acl.allow. */
  aclRefused = 0;
  /** Messages dropped without a reply (no header, or QR set). */
  dropped = 0;
  /** Forwarded queries not yet answered. */
  pending = 0;
  /**
   * Forwards that ended in SERVFAIL because no layer had an answer, by the
   * UpstreamError code (Timeout, AllFailed, OverBudget, Overload, Closed; Error
   * for anything else). A few keys at most.
   */
  readonly forwardErrors = new Map<string, number>();

  replied(source: ReplySource, rcode: number): void {
    this.responses[source][rcode & (RCODE_SLOTS - 1)]!++;
  }

  forwardFailed(code: string): void {
    this.forwardErrors.set(code, (this.forwardErrors.get(code) ?? 0) + 1);
  }
}
