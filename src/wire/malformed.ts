/**
 * Thrown by the wire readers on bytes that break RFC 1035's layout. Callers
 * turn it into FORMERR (a query) or a dropped message (a reply); it never
 * escapes a listener. No stack: it is thrown per bad packet under a flood.
 */
export class Malformed extends Error {
  override readonly name = 'Malformed';

  constructor(message: string) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
  }
}
