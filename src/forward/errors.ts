/**
 * Why a forwarded query produced no upstream answer. The pipeline answers
 * SERVFAIL for every code; the code is for metrics and tests.
 *
 * - TIMEOUT: every attempt (one per configured server) timed out.
 * - ALL_FAILED: every attempt failed, at least one with an error other than a
 *   timeout (send error, TCP connection refused/reset); or no server is
 *   configured at all.
 * - OVERLOAD: maxInFlight queries were already outstanding; rejected at once.
 * - CLOSED: the upstream was closed before or while the query was pending.
 * - BAD_QUERY: the message handed to resolve() is not a one-question query
 *   with an uncompressed name. The pipeline should have answered FORMERR
 *   before forwarding, so this signals a caller bug, not an upstream fault.
 */
export type UpstreamErrorCode = 'TIMEOUT' | 'ALL_FAILED' | 'OVERLOAD' | 'CLOSED' | 'BAD_QUERY';

export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  readonly code: UpstreamErrorCode;

  constructor(code: UpstreamErrorCode, message: string) {
    // Under a flood every shed query builds one of these; a stack trace would
    // cost more than the rejection itself and never points anywhere useful
    // (it is always a timer or socket callback).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.code = code;
  }
}
