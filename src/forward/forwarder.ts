// The forward leg as the pipeline sees it. Features stack as decorators that
// each implement this interface (EIP rewrite → cache → budget guard →
// upstream, assembled in one place: src/chain.ts, beside server.ts), the way
// CoreDNS chains plugins: each layer either answers or hands the request to
// the one below, and exposes its own stats().

import type { Query } from '../wire/query.js';

/** Which layer produced a forwarded reply (a metrics label). */
export type AnswerSource = 'upstream' | 'cache' | 'stale';

export interface ForwardRequest {
  /** The client's message as received; never modified. */
  readonly msg: Buffer;
  /** Parsed once by the pipeline; no layer parses the question again. */
  readonly query: Query;
  /** The client came over TCP, so it must get the whole answer, never TC. */
  readonly viaTcp: boolean;
  /** Set by the layer that produced the reply; starts as 'upstream'. */
  source: AnswerSource;
}

export interface Forwarder<S = unknown> {
  /**
   * The reply for this client: its ID, RD bit and question spelling restored
   * (wire/reply.ts restoreClient), not yet fitted to its UDP size. A cache
   * hit returns synchronously. Rejects (an UpstreamError) when no answer can
   * be had; the pipeline then answers SERVFAIL.
   */
  resolve(req: ForwardRequest): Buffer | Promise<Buffer>;
  stats(): S;
  close(): Promise<void>;
}
