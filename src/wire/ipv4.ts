// IPv4 addresses as the 32-bit numbers an A record's RDATA holds: the
// Elastic IP rewrite looks replies up by them, and discovery sorts by them.

/** "10.0.1.10" → 0x0a00010a. The caller passes a valid dotted quad. */
export function ipv4ToNumber(ip: string): number {
  return ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

export function numberToIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}
