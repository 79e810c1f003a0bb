// eipdns as a secondary of Knot serving a zone whose SOA says refresh 0,
// retry 0, expire 0 (Knot serves what its zone file says). eipdns clamps
// them to its floor: without that, every event-loop turn would open a new
// IXFR connection to Knot, and the zone would expire a millisecond after
// each transfer.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SOA_FLOOR } from '../../src/config/types.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { KEY_NAME, newSecret, secondaryYaml } from '../transfer/helpers.js';
import { startPeer, type Peer } from './peers.js';
import { dig, requireTools, sleep, waitFor } from './tools.js';

const ZONE = `$ORIGIN zero.test.
$TTL 300
@       IN SOA ns1 hostmaster 7 0 0 0 60
@       IN NS  ns1
ns1     IN A   192.0.2.53
www     IN A   192.0.2.80
`;

let tools: Record<'knotd' | 'dig', string>;
let knot: Peer;
let secondary: TestServer;
const secret = newSecret();

beforeAll(async () => {
  tools = requireTools('knotd', 'dig');
  knot = await startPeer('knotd', tools.knotd, { zone: 'zero.test', zoneFile: ZONE, key: { name: KEY_NAME, secret } });
  secondary = await startTestServer(secondaryYaml({ zone: 'zero.test', primaries: [`127.0.0.1:${knot.port}`] }), { files: { 'transfer.key': `${secret}\n` } });
}, 30_000);

afterAll(async () => {
  await secondary?.close();
  await knot?.stop();
});

describe('a Knot primary whose SOA timers are zero', () => {
  it('is refreshed at the floor, and the zone does not expire', async () => {
    await waitFor('the zone', async () => ((await dig(tools.dig, 'dig', { port: secondary.port, name: 'www.zero.test' })).status === 'NOERROR' ? true : undefined), 20_000);
    const zone = secondary.server.transfer.secondary('zero.test')!;
    expect(zone.versions.current?.soa).toMatchObject({ refresh: 0, retry: 0, expire: 0 });
    expect(zone.timers()).toEqual(SOA_FLOOR);
    const stats = secondary.server.transfer.stats.fetched;
    await zone.refresh();
    const asked = stats.upToDate;
    // The next refresh was set (at ≥ 1 s) before this timer (at 1/4 of the
    // floor): timers fire in order of expiry, so however slow the machine,
    // it cannot have run yet. Unclamped, Knot would have been asked
    // hundreds of times by now.
    await sleep((SOA_FLOOR.refresh * 1000) / 4);
    expect(stats.upToDate).toBe(asked);
    expect(stats.axfr).toBe(1);
    expect((await dig(tools.dig, 'dig', { port: secondary.port, name: 'www.zero.test' })).status).toBe('NOERROR');
  });
});
