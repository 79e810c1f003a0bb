// eipdns as primary and eipdns as secondary, both real servers on loopback:
// the zone crosses by AXFR with TSIG, a change follows by NOTIFY + IXFR (the
// refresh timer is an hour, so nothing else could carry it), the secondary
// answers byte for byte what the primary answers, and past SOA expire with
// the primary gone it answers SERVFAIL (an injected clock, not an hour).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPCODE, RCODE, TYPE } from '../../src/wire/codes.js';
import { buildQuery, sendTcp, sendUdp } from '../helpers/dns-client.js';
import { inventory, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { manualClock } from '../ec2/helpers.js';
import { freePort, waitFor } from '../interop/tools.js';
import { keyOf, newSecret, primaryYaml, rcodeOf, request, secondaryYaml } from './helpers.js';

const EIPS = (dbIp: string) =>
  inventory([
    { publicIp: '198.51.100.10', allocationId: 'eipalloc-0db00000000000001', privateIp: dbIp, tags: { Role: 'db' } },
    { publicIp: '198.51.100.11', allocationId: 'eipalloc-0cace000000000001', privateIp: '10.0.1.11', tags: { Role: 'cache' } },
    { publicIp: '203.0.113.25', allocationId: 'eipalloc-0beef000000000001', tags: { Role: 'queue' } },
    { publicIp: '198.51.100.20', allocationId: 'eipalloc-0aa00000000000001', privateIp: '10.0.3.2', tags: { Role: 'pair' } },
    { publicIp: '198.51.100.21', allocationId: 'eipalloc-0aa00000000000002', privateIp: '10.0.3.1', tags: { Role: 'pair' } },
  ]);

const RECORDS = [
  'db:    { elastic_ip: { tag: { Role: db } } }',
  'cache: { elastic_ip: { allocation_id: eipalloc-0cace000000000001 } }',
  'queue: { elastic_ip: { public_ip: 203.0.113.25 } }',
  'pair:  { elastic_ip: { tag: { Role: pair } } }',
  'a.deep: { a: ["10.0.9.9"] }',
];

const secret = newSecret();
const clock = manualClock(Date.now());
let primary: TestServer;
let secondary: TestServer;
let secondaryPort: number;
let primaryClosed = false;

beforeAll(async () => {
  secondaryPort = await freePort();
  primary = await startTestServer(primaryYaml({ records: RECORDS, notify: [`127.0.0.1:${secondaryPort}`] }), {
    files: { 'inventory.json': EIPS('10.0.1.10'), 'transfer.key': `${secret}\n` },
    server: { transfer: { notifyWaitsMs: [200, 400, 800] } },
  });
  await primary.server.discovery().pollNow();
  const dir = tempDir();
  secondary = await startTestServer(secondaryYaml({ listen: `127.0.0.1:${secondaryPort}`, primaries: [`127.0.0.1:${primary.port}`] }), {
    dir,
    files: { 'transfer.key': `${secret}\n` },
    now: clock.now,
  });
});

afterAll(async () => {
  await secondary?.close();
  if (!primaryClosed) await primary?.close();
});

const answerOf = async (port: number, name: string, type: number | string): Promise<Buffer> => (await sendUdp(port, buildQuery(name, type, { id: 77 })))!;

describe('eipdns primary → eipdns secondary', () => {
  it('loads the zone by AXFR with TSIG and answers byte for byte as the primary does', async () => {
    await waitFor('the secondary to hold the zone', async () => (rcodeOf(await answerOf(secondaryPort, 'db.internal', 'A')) === 0 ? true : undefined));
    const questions: Array<[string, string]> = [
      ['db.internal', 'A'],
      ['DB.Internal', 'A'],
      ['pair.internal', 'A'],
      ['db.internal', 'AAAA'],
      ['queue.internal', 'A'],
      ['nope.internal', 'A'],
      ['deep.internal', 'A'],
      ['a.deep.internal', 'ANY'],
      ['internal', 'SOA'],
      ['internal', 'NS'],
      ['internal', 'ANY'],
      ['10.1.0.10.in-addr.arpa', 'PTR'],
    ];
    for (const [name, type] of questions) {
      const [p, s] = [await answerOf(primary.port, name, type), await answerOf(secondaryPort, name, type)];
      // Rotation order aside (each server keeps its own counter), the bytes are the same.
      if (name === 'pair.internal') expect(s.length, `${name} ${type}`).toBe(p.length);
      else expect(s.toString('hex'), `${name} ${type}`).toBe(p.toString('hex'));
    }
    expect(secondary.server.transfer.stats.fetched.axfr).toBe(1);
  });

  it('follows an Elastic IP move after NOTIFY, by IXFR, without waiting for the refresh timer', async () => {
    const servedIxfr = primary.server.transfer.stats.served.ixfr;
    primary.write('inventory.json', EIPS('10.0.1.99'));
    await primary.server.discovery().pollNow();
    await waitFor('the secondary to answer the new address', async () => {
      const r = await answerOf(secondaryPort, 'db.internal', 'A');
      return r.subarray(r.length - 4).join('.') === '10.0.1.99' ? true : undefined;
    });
    expect(secondary.server.transfer.stats.fetched.ixfr).toBe(1);
    expect(primary.server.transfer.stats.served.ixfr).toBe(servedIxfr + 1);
    expect(secondary.server.transfer.stats.notify.received).toBeGreaterThanOrEqual(1);
    await primary.server.transfer.notifier('internal')!.settled;
    expect(primary.server.transfer.stats.notify.acked).toBeGreaterThanOrEqual(1);
  });

  it('refuses NOTIFY from an address that is not a primary, and an unsigned one from a primary', async () => {
    const before = secondary.server.transfer.stats.notify.refused;
    const notify = request({ type: TYPE.SOA, opcode: OPCODE.NOTIFY, key: keyOf(secret) }).msg;
    const other = await sendUdp(secondaryPort, notify, { from: '127.0.0.2' });
    expect(rcodeOf(other!)).toBe(RCODE.REFUSED);
    const unsigned = await sendUdp(secondaryPort, request({ type: TYPE.SOA, opcode: OPCODE.NOTIFY }).msg);
    expect(rcodeOf(unsigned!)).toBe(RCODE.REFUSED);
    const wrongKey = await sendUdp(secondaryPort, request({ type: TYPE.SOA, opcode: OPCODE.NOTIFY, key: keyOf(newSecret()) }).msg);
    expect(rcodeOf(wrongKey!)).toBe(RCODE.NOTAUTH);
    expect(secondary.server.transfer.stats.notify.refused).toBe(before + 2);
  });

  it('refuses AXFR from the secondary to a client: it has no transfer.allow', async () => {
    const replies = await sendTcp(secondaryPort, [request({ type: TYPE.AXFR, key: keyOf(secret) }).msg]);
    expect(rcodeOf(replies[0]!)).toBe(RCODE.REFUSED);
  });

  it('keeps answering while the primary is down, and answers SERVFAIL once past the SOA expire', async () => {
    await primary.close();
    primaryClosed = true;
    await secondary.server.transfer.secondary('internal')!.refresh(); // fails: the primary is gone
    expect(rcodeOf(await answerOf(secondaryPort, 'db.internal', 'A'))).toBe(RCODE.NOERROR);
    clock.advance(7_201_000); // SOA expire is 7200 s; retries run every second (SOA retry)
    await waitFor('the zone to expire', async () => (rcodeOf(await answerOf(secondaryPort, 'db.internal', 'A')) === RCODE.SERVFAIL ? true : undefined));
    expect(rcodeOf(await answerOf(secondaryPort, 'internal', 'SOA'))).toBe(RCODE.SERVFAIL);
  });
});
