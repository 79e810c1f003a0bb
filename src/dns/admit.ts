// Stage 2: who may ask. A query from outside the allow list is REFUSED and
// never forwarded, so eipdns cannot be used as an open resolver.

import { BlockList, isIPv4 } from 'node:net';

export type Admit = (address: string) => boolean;

/** `cidrs` are normalised "addr/len" strings (the config loader guarantees it). */
export function createAdmit(cidrs: readonly string[]): Admit {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [addr, len] = cidr.split('/') as [string, string];
    list.addSubnet(addr, Number(len), isIPv4(addr) ? 'ipv4' : 'ipv6');
  }
  return (address) => {
    // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
    if (address.startsWith('::ffff:') && isIPv4(address.slice(7))) address = address.slice(7);
    return list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
  };
}
