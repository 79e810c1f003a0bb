// Stage 2: who may ask. A query from outside the allow list is REFUSED and
// never forwarded, so eipdns cannot be used as an open resolver.

import { BlockList, isIPv4 } from 'node:net';

export type Admit = (address: string) => boolean;

/**
 * Verdicts are remembered per address: BlockList.check builds a SocketAddress
 * on every call, which the benchmark profile showed at ~12% of the private
 * path. Bounded, since spoofed sources can be arbitrary.
 */
const MAX_REMEMBERED = 16_384;

/** A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d: the plain address. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** The CIDR that admits exactly this IP address (/32 or /128). */
export function hostCidr(address: string): string {
  const plain = plainAddress(address);
  return `${plain}/${isIPv4(plain) ? 32 : 128}`;
}

/** `cidrs` are normalised "addr/len" strings (the config loader guarantees it). */
export function createAdmit(cidrs: readonly string[]): Admit {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [addr, len] = cidr.split('/') as [string, string];
    list.addSubnet(addr, Number(len), isIPv4(addr) ? 'ipv4' : 'ipv6');
  }
  const verdicts = new Map<string, boolean>();
  return (address) => {
    let allowed = verdicts.get(address);
    if (allowed === undefined) {
      const plain = plainAddress(address);
      allowed = list.check(plain, isIPv4(plain) ? 'ipv4' : 'ipv6');
      if (verdicts.size >= MAX_REMEMBERED) verdicts.clear();
      verdicts.set(address, allowed);
    }
    return allowed;
  };
}
