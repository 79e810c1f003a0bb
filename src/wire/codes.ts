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
  /** Extended rcode 16; needs an OPT record to carry its upper bits. */
  BADVERS: 16,
} as const;

export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  OPT: 41,
  TSIG: 250,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
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
} as const;
