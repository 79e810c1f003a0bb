// Address syntax for listen/upstream entries and ACL prefixes. Each parser
// returns either the parsed value or a human-readable reason, so the caller
// decides where (which YAML node) the reason is reported.

import { isIPv4, isIPv6 } from 'node:net';
import type { HostPort } from './types.js';

/** "10.0.0.2:53", "[fd00::2]:53": an address as logs, messages and URLs write it. */
export function showHostPort(a: { readonly host: string; readonly port: number }): string {
  return `${showHost(a.host)}:${a.port}`;
}

/** An IPv6 address in brackets (ready for ":port"), anything else as is. */
export function showHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** Where this host reaches a listener bound to `host`: a wildcard is reached over loopback. */
export function loopbackFor(host: string): string {
  return host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(error: string): Parsed<T> => ({ ok: false, error });

/**
 * One spelling per address, so that duplicates and self-forwarding are
 * detectable by string comparison ("::0:1" and "::1" are the same socket).
 */
export function canonicalIp(ip: string): string {
  if (isIPv4(ip)) return ip;
  const bigint = ipv6ToBigInt(ip);
  return bigint === undefined ? ip.toLowerCase() : bigIntToIpv6(bigint);
}

export interface HostPortRules {
  readonly defaultPort: number;
  /** 0 only where it means "any free port" (a listener), never for a peer. */
  readonly minPort: 0 | 1;
  /** Why a hostname is refused, in the caller's terms. */
  readonly hostnameHint: string;
}

/**
 * "1.2.3.4", "1.2.3.4:53", "[::1]:53", "[::1]" or a bare "::1". Names are
 * refused: eipdns must never depend on resolution it would do itself.
 */
export function parseHostPort(text: string, rules: HostPortRules): Parsed<HostPort> {
  const { defaultPort, hostnameHint } = rules;
  const s = text.trim();
  if (s === '') return fail('expected an IP address, got an empty string');

  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(s);
  if (bracketed) {
    const host = bracketed[1]!;
    if (!isIPv6(host)) return fail(`"${host}" in brackets is not an IPv6 address`);
    return withPort(host, bracketed[2], rules);
  }
  // A bare IPv6 literal contains colons, so it must be tested before "host:port".
  if (isIPv4(s) || isIPv6(s)) return ok({ host: canonicalIp(s), port: defaultPort });

  const colon = s.lastIndexOf(':');
  const host = colon === -1 ? s : s.slice(0, colon);
  const port = colon === -1 ? undefined : s.slice(colon + 1);
  if (isIPv4(host)) return withPort(host, port, rules);
  if (host.includes(':')) return fail(`"${s}" is not an address; write an IPv6 address with a port as "[addr]:port"`);
  if (/^[A-Za-z0-9_.-]+$/.test(host) && /[A-Za-z_-]/.test(host)) {
    return fail(`"${host}" is a hostname, not an IP address: ${hostnameHint}`);
  }
  return fail(`"${s}" is not an IP address or "ip:port"`);
}

function withPort(host: string, port: string | undefined, rules: HostPortRules): Parsed<HostPort> {
  if (port === undefined) return ok({ host: canonicalIp(host), port: rules.defaultPort });
  const n = /^[0-9]{1,5}$/.test(port) ? Number(port) : NaN;
  if (!(n >= rules.minPort && n <= 65535)) {
    return fail(`port "${port}" is not valid: expected an integer ${rules.minPort}..65535`);
  }
  return ok({ host: canonicalIp(host), port: n });
}

/**
 * "10.0.0.0/8" or a bare address (a single host). Returns "addr/len" with the
 * address canonicalised. Host bits set below the prefix are refused rather
 * than masked: "10.0.1.5/16" is far more often a mistyped /32 than a
 * deliberate /16, and an ACL that silently widens is the worse failure.
 */
export function parseCidr(text: string): Parsed<string> {
  const s = text.trim();
  const slash = s.indexOf('/');
  const addr = slash === -1 ? s : s.slice(0, slash);
  const lenText = slash === -1 ? undefined : s.slice(slash + 1);

  const v4 = isIPv4(addr);
  if (!v4 && !isIPv6(addr)) return fail(`"${s}" is not a CIDR prefix: "${addr}" is not an IPv4 or IPv6 address`);
  if (addr.includes('%')) return fail(`"${s}": zone indices ("%eth0") are not allowed in an ACL`);
  const bits = v4 ? 32 : 128;

  let len = bits;
  if (lenText !== undefined) {
    if (!/^[0-9]{1,3}$/.test(lenText) || Number(lenText) > bits) {
      return fail(`"${s}": prefix length must be an integer 0..${bits}`);
    }
    len = Number(lenText);
  }

  const value = v4 ? ipv4ToBigInt(addr) : ipv6ToBigInt(addr)!;
  const hostMask = (1n << BigInt(bits - len)) - 1n;
  const network = value & ~hostMask;
  const render = (n: bigint): string => (v4 ? bigIntToIpv4(n) : bigIntToIpv6(n));
  if ((value & hostMask) !== 0n) {
    return fail(`"${s}" has host bits set; did you mean "${render(network)}/${len}" (or "${addr}" for the single host)?`);
  }
  return ok(`${render(network)}/${len}`);
}

function ipv4ToBigInt(ip: string): bigint {
  return ip.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

function bigIntToIpv4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((n >> shift) & 0xffn)).join('.');
}

/** Undefined for anything but a plain IPv6 literal (no zone index). */
function ipv6ToBigInt(ip: string): bigint | undefined {
  if (!isIPv6(ip) || ip.includes('%')) return undefined;
  let text = ip.toLowerCase();
  // An embedded dotted quad ("::ffff:10.0.0.1") stands for the last two groups.
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) {
    const v4 = ipv4ToBigInt(quad[1]!);
    text = `${text.slice(0, quad.index)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  const groups = [...headGroups, ...zeros, ...tailGroups];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** RFC 5952 text form: lower case, longest run (≥ 2) of zero groups as "::". */
function bigIntToIpv6(n: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(16 * (7 - i))) & 0xffffn));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Would a datagram sent to `to` arrive at a socket bound to `bound`? */
export function reachesListener(to: HostPort, bound: HostPort): boolean {
  if (to.port !== bound.port) return false;
  if (to.host === bound.host) return true;
  const wildcard = bound.host === '0.0.0.0' || bound.host === '::';
  const local = to.host.startsWith('127.') || to.host === '::1' || to.host === '0.0.0.0' || to.host === '::';
  return wildcard && local;
}

/**
 * Would two TCP listeners on these addresses fail to bind together? Linux
 * refuses a specific address on a port a wildcard already holds, and "::"
 * holds IPv4 too (Node listens dual-stack). Port 0 is always a fresh port.
 */
export function bindsOverlap(a: HostPort, b: HostPort): boolean {
  if (a.port !== b.port || a.port === 0) return false;
  if (a.host === b.host || a.host === '::' || b.host === '::') return true;
  const v4 = (h: string): boolean => isIPv4(h);
  return (a.host === '0.0.0.0' && v4(b.host)) || (b.host === '0.0.0.0' && v4(a.host));
}
