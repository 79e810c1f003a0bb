// eipdns as a secondary of Knot serving a zone file with TSIG: the zone
// loads, eipdns answers as Knot does (status, AA, answer and authority
// sections, for the record types a real zone holds), and a change to the
// zone file plus Knot's NOTIFY is followed by IXFR at once.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { KEY_NAME, newSecret, secondaryYaml } from '../transfer/helpers.js';
import { startPeer, type Peer } from './peers.js';
import { dig, freePort, requireTools, waitFor, type DigResult } from './tools.js';

const zoneText = (serial: number, www: string): string => `$ORIGIN example.test.
$TTL 300
@       IN SOA ns1 hostmaster ${serial} 3600 600 86400 60
@       IN NS  ns1
@       IN MX  10 mail
@       IN TXT "v=spf1 -all"
ns1     IN A   192.0.2.53
mail    IN A   192.0.2.25
mail    IN AAAA 2001:db8::25
www     60 IN A ${www}
www     60 IN A 192.0.2.81
alias   IN CNAME www
chain   IN CNAME alias
away    IN CNAME www.elsewhere.invalid.
_sip._tcp IN SRV 10 60 5060 mail
*.apps  IN A   192.0.2.99
a.b.deep IN TXT "deep"
`;

let tools: Record<'knotd' | 'knotc' | 'dig', string>;
let knot: Peer;
let secondary: TestServer;
const secret = newSecret();

beforeAll(async () => {
  tools = requireTools('knotd', 'knotc', 'dig');
  const port = await freePort();
  knot = await startPeer('knotd', tools.knotd, { zone: 'example.test', zoneFile: zoneText(1, '192.0.2.80'), notify: { port }, key: { name: KEY_NAME, secret } });
  secondary = await startTestServer(secondaryYaml({ listen: `127.0.0.1:${port}`, zone: 'example.test', primaries: [`127.0.0.1:${knot.port}`] }), {
    files: { 'transfer.key': `${secret}\n` },
  });
}, 30_000);

afterAll(async () => {
  await secondary?.close();
  await knot?.stop();
});

/** What a resolver sees of an answer: status, AA, and the answer and authority records (sorted). */
function seen(r: DigResult): string {
  const rr = (list: DigResult['answer']) => list.map((x) => `${x.name} ${x.ttl} ${x.type} ${x.data}`).sort().join('\n');
  return `${r.status} aa=${r.flags.has('aa')}\n${rr(r.answer)}\n--\n${rr(r.authority)}`;
}

describe('eipdns as a secondary of Knot', () => {
  it('loads the zone by AXFR with TSIG', async () => {
    await waitFor('the zone', async () => ((await dig(tools.dig, 'dig', { port: secondary.port, name: 'www.example.test' })).status === 'NOERROR' ? true : undefined), 20_000);
    expect(secondary.server.transfer.stats.fetched.axfr).toBe(1);
  });

  it.each([
    ['www.example.test', 'A'],
    ['example.test', 'SOA'],
    ['example.test', 'NS'],
    ['example.test', 'MX'],
    ['example.test', 'TXT'],
    ['mail.example.test', 'AAAA'],
    ['alias.example.test', 'A'],
    ['chain.example.test', 'A'],
    ['away.example.test', 'A'],
    ['_sip._tcp.example.test', 'SRV'],
    ['x.apps.example.test', 'A'],
    ['deep.example.test', 'TXT'],
    ['nope.example.test', 'A'],
    ['www.example.test', 'AAAA'],
  ])('answers %s %s as Knot does', async (name, type) => {
    const [ours, theirs] = await Promise.all([
      dig(tools.dig, 'dig', { port: secondary.port, name, type }),
      dig(tools.dig, 'dig', { port: knot.port, name, type }),
    ]);
    expect(seen(ours)).toBe(seen(theirs));
  });

  it('follows a change to the zone file after Knot\'s NOTIFY, by IXFR', async () => {
    await knot.reloadZone!(zoneText(2, '192.0.2.180'));
    await waitFor('the new address', async () => {
      const r = await dig(tools.dig, 'dig', { port: secondary.port, name: 'www.example.test' });
      return r.answer.some((a) => a.data === '192.0.2.180') ? true : undefined;
    }, 20_000);
    expect(secondary.server.transfer.stats.notify.received).toBeGreaterThanOrEqual(1);
    expect(secondary.server.transfer.stats.fetched.ixfr).toBe(1);
    expect(knot.log()).toMatch(/IXFR, outgoing, remote 127\.0\.0\.1@\d+.*started/);
  });
});
