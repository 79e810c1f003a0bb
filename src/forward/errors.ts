/**
 * Why a forwarded query produced no upstream answer. The pipeline answers
 * SERVFAIL (or the cache a stale answer) for every code; the code is for
 * metrics, logs and tests. Codes are spelled like AWS's own error codes
 * (PascalCase: `RequestLimitExceeded`, discovery's `PollTimeout`), so every
 * error label in the metrics reads the same way.
 *
 * - Timeout: every attempt (one per configured server) timed out.
 * - AllFailed: every attempt failed, at least one with an error other than a
 *   timeout (send error, TCP connection refused/reset); or no server is
 *   configured at all.
 * - OverBudget: sending would pass upstream.max_qps (the VPC resolver drops
 *   past 1024 packets/s); refused at once, nothing was sent.
 * - Overload: max_in_flight queries were already outstanding; refused at once.
 * - Closed: the upstream was closed before or while the query was pending.
 */
export type UpstreamErrorCode = 'Timeout' | 'AllFailed' | 'OverBudget' | 'Overload' | 'Closed';
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
