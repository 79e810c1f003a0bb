// RFC numbers every room shares. One definition each: the zone, the cache, the
// forwarder and zone transfer all speak the same wire format, and two spellings
// of one constant is how a wrong bit ships.

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  NOTAUTH: 9,
  /** RFC 2136: a name outside the zone (UPDATE, and some primaries' transfer errors). */
  NOTZONE: 10,
  /** Extended rcode 16; needs an OPT record to carry its upper bits. */
  BADVERS: 16,
} as const;

/**
 * The TSIG record's own Error field (RFC 8945 §3): 16 means BADSIG there and
 * BADVERS in an OPT, so the two live apart. The header says NOTAUTH.
 */
export const TSIG_ERROR = {
  NOERROR: 0,
  BADSIG: 16,
  BADKEY: 17,
  BADTIME: 18,
  BADTRUNC: 22,
} as const;

/**
 * The TSIG algorithms eipdns signs and verifies with (RFC 8945 §6), by their
 * name on the wire, each with Node's name for its hash. The config accepts
 * exactly these, in this order in its messages.
 */
export const TSIG_HASHES = {
  'hmac-sha256': 'sha256',
  'hmac-sha384': 'sha384',
  'hmac-sha512': 'sha512',
  'hmac-sha1': 'sha1',
} as const;

export type TsigAlgorithm = keyof typeof TSIG_HASHES;

const RCODE_NAMES = new Map<number, string>(Object.entries(RCODE).map(([name, code]) => [code, name]));
const TSIG_ERROR_NAMES = new Map<number, string>(Object.entries(TSIG_ERROR).map(([name, code]) => [code, name]));

/** "REFUSED", or "RCODE 7" for a code without a name here (logs, messages, metric labels). */
export function rcodeName(rcode: number): string {
  return RCODE_NAMES.get(rcode) ?? `RCODE ${rcode}`;
}

/**
 * "BADSIG"; the Error field is an extended RCODE (RFC 8945 §4.3), so below 16
 * the RCODE names apply (FORMERR for a malformed TSIG); "error 20" otherwise.
 */
export function tsigErrorName(error: number): string {
  return TSIG_ERROR_NAMES.get(error) ?? RCODE_NAMES.get(error) ?? `error ${error}`;
}

export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  /** RFC 2931 SIG(0) when in the additional section: a transaction signature. */
  SIG: 24,
  SRV: 33,
  OPT: 41,
  RRSIG: 46,
  TSIG: 250,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
  /**
   * Private use (RFC 6895 §3.1): marks a name that exists with no address
   * (an Elastic IP not associated), so a transferred copy answers NODATA
   * there, as eipdns does, rather than NXDOMAIN. Empty RDATA.
   */
  EIPDNS_EMPTY: 65280,
} as const;

/** RFC 8914 §4 INFO-CODEs eipdns sends. */
export const EDE = {
  STALE_ANSWER: 3,
  STALE_NXDOMAIN_ANSWER: 19,
} as const;

export const CLASS = {
  IN: 1,
  NONE: 254,
  ANY: 255,
} as const;

export const OPCODE = {
  QUERY: 0,
  NOTIFY: 4,
} as const;

/** EDNS(0) option codes (IANA "DNS EDNS0 Option Codes"). */
export const EDNS_OPTION = {
  /** RFC 7871: an answer may depend on it, so such queries are never cached. */
  CLIENT_SUBNET: 8,
  /** RFC 8914 Extended DNS Error: stale answers say so. */
  EDE: 15,
} as const;
