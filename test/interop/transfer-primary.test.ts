// eipdns as the primary of real secondaries: Knot, BIND and NSD with TSIG,
// Unbound's auth-zone without (it has no TSIG for zone transfers). The
// addresses come from the EC2 test server through the real SDK; an Elastic
// IP moved there with AssociateAddress reaches every secondary by NOTIFY (the
// SOA refresh is an hour, so nothing else could carry it in time), by IXFR
// where the peer asks for it. A secondary with the wrong key gets nothing.
// And dig AXFR/IXFR by hand, from an allowed address and a refused one.

import { AssociateAddressCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeEc2, type FakeEc2 } from '../ec2/fake-ec2.js';
import { clientFor } from '../ec2/helpers.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { KEY_NAME, newSecret, primaryYaml } from '../transfer/helpers.js';
import { startPeer, type Peer, type PeerKind } from './peers.js';
import { dig, freePort, requireTools, run, waitFor } from './tools.js';

const IP_A = '10.0.1.10';
const IP_B = '10.0.1.20';
const TSIG_PEERS = ['knotd', 'named', 'nsd'] as const;

let tools: Record<'knotd' | 'named' | 'nsd' | 'unbound' | 'dig' | 'kdig' | 'knotc', string>;
let fake: FakeEc2;
let ec2: EC2Client;
let allocationId: string;
const instances: string[] = [];
let primary: TestServer;
const secret = newSecret();
const peers = new Map<string, Peer>();

/** What `peer` answers for `name` A (empty when it has no answer). */
async function addressAt(port: number, name = 'db.internal'): Promise<string[]> {
  const r = await dig(tools.dig, 'dig', { port, name, type: 'A' });
  return r.status === 'NOERROR' ? r.answer.filter((a) => a.type === 'A').map((a) => a.data) : [];
}

beforeAll(async () => {
  tools = requireTools('knotd', 'named', 'nsd', 'unbound', 'dig', 'kdig', 'knotc');
  fake = await startFakeEc2();
  instances.push(fake.addInstance({ privateIps: [IP_A], tags: { Name: 'db-a' } }).instanceId);
  instances.push(fake.addInstance({ privateIps: [IP_B], tags: { Name: 'db-b' } }).instanceId);
  allocationId = fake.addAddress({ publicIp: '198.51.100.10', tags: { Role: 'db' } }).allocationId;
  fake.associate(allocationId, { instanceId: instances[0]! });
  ec2 = clientFor(fake);

  // Ports first: each secondary is a NOTIFY target of the primary, the primary each one's primary.
  const ports: Record<string, number> = {};
  for (const kind of [...TSIG_PEERS, 'unbound', 'wrongkey']) ports[kind] = await freePort();
  const yaml = primaryYaml({
    records: ['db: { elastic_ip: { tag: { Role: db } } }', 'ops: { a: ["10.0.9.9"] }'],
    notify: TSIG_PEERS.map((k) => `127.0.0.1:${ports[k]}`),
    source: { endpoint: fake.url },
    pollMs: 300,
  })
    // A second zone without TSIG, for Unbound.
    .replace(
      'acl:',
      `  - name: open.test
    records:
      web: { a: ["10.0.7.7"] }
    transfer:
      allow: ["127.0.0.1/32"]
      notify: ["127.0.0.1:${ports.unbound}"]
acl:`,
    );
  primary = await startTestServer(yaml, { files: { 'transfer.key': `${secret}\n` }, ec2Client: clientFor(fake) });
  await primary.server.discovery().pollNow();

  const key = { name: KEY_NAME, secret };
  const started = await Promise.all([
    ...TSIG_PEERS.map((kind) => startPeer(kind, tools[kind], { zone: 'internal', primary: { port: primary.port }, key, port: ports[kind] })),
    startPeer('unbound', tools.unbound, { zone: 'open.test', primary: { port: primary.port }, port: ports.unbound }),
    startPeer('knotd', tools.knotd, { zone: 'internal', primary: { port: primary.port }, key: { name: KEY_NAME, secret: newSecret() }, port: ports.wrongkey }),
  ]);
  for (const [i, kind] of [...TSIG_PEERS, 'unbound', 'wrongkey'].entries()) peers.set(kind, started[i]!);
}, 60_000);

afterAll(async () => {
  await Promise.all([...peers.values()].map((p) => p.stop()));
  await primary?.close();
  ec2?.destroy();
  await fake?.close();
});

describe.each(TSIG_PEERS)('%s as a secondary of eipdns, with TSIG', (kind: PeerKind) => {
  it('loads the zone', async () => {
    const peer = peers.get(kind)!;
    await waitFor(`${kind} to answer db.internal`, async () => ((await addressAt(peer.port)).includes(IP_A) ? true : undefined), 30_000);
    expect(await addressAt(peer.port, 'ops.internal')).toEqual(['10.0.9.9']);
  });
});

describe('Unbound auth-zone as a secondary of eipdns (no TSIG: Unbound has none for transfers)', () => {
  it('loads the zone', async () => {
    const peer = peers.get('unbound')!;
    await waitFor('unbound to answer web.open.test', async () => ((await addressAt(peer.port, 'web.open.test')).includes('10.0.7.7') ? true : undefined), 30_000);
  });
});

describe('an Elastic IP moved in EC2', () => {
  it('reaches every secondary by NOTIFY, by IXFR where the peer asks for it', async () => {
    const ixfrBefore = primary.server.transfer.stats.served.ixfr;
    await ec2.send(new AssociateAddressCommand({ AllocationId: allocationId, InstanceId: instances[1]!, AllowReassociation: true }));
    for (const kind of TSIG_PEERS) {
      const peer = peers.get(kind)!;
      await waitFor(`${kind} to answer the new address`, async () => ((await addressAt(peer.port)).includes(IP_B) ? true : undefined), 30_000);
    }
    // Knot says which kind it took; the primary counts the incremental answers it
    // served (Knot, BIND and NSD all ask for IXFR once they hold a copy).
    expect(peers.get('knotd')!.log()).toMatch(/IXFR, incoming, remote 127\.0\.0\.1@\d+.*(finished|started)/);
    expect(primary.server.transfer.stats.served.ixfr).toBeGreaterThanOrEqual(ixfrBefore + 3);
    expect(primary.server.transfer.stats.notify.acked).toBeGreaterThanOrEqual(3);
  });
});

describe('a secondary with the wrong key', () => {
  it('is refused: it never holds the zone, and eipdns logs BADSIG', async () => {
    const peer = peers.get('wrongkey')!;
    await waitFor('knotd to report the failed refresh', () => (/\[internal\.\] refresh, remote eipdns_primary.*failed \(failed to verify TSIG\)/.test(peer.log()) ? true : undefined), 30_000);
    expect(await addressAt(peer.port)).toEqual([]);
    expect(primary.server.transfer.stats.tsigFailures).toBeGreaterThan(0);
  });
});

describe('dig AXFR and IXFR by hand', () => {
  const y = (): string => `hmac-sha256:${KEY_NAME}:${secret}`;

  it('from an allowed address: the whole zone, and the changes since a serial', async () => {
    const axfr = await run(tools.dig, ['@127.0.0.1', '-p', String(primary.port), 'internal', 'AXFR', '-y', y()]);
    expect(axfr.stdout).toMatch(/^internal\.\s+5\s+IN\s+SOA\s+eipdns\.invalid\./m);
    expect(axfr.stdout).toMatch(/^db\.internal\.\s+5\s+IN\s+A\s+10\.0\.1\.20$/m);
    expect(axfr.stdout).not.toMatch(/Transfer failed/);
    const serial = Number(/SOA\s+\S+\s+\S+\s+(\d+)/.exec(axfr.stdout)![1]);
    const history = primary.server.transfer.stats.served.ixfr;
    const ixfr = await run(tools.dig, ['@127.0.0.1', '-p', String(primary.port), 'internal', `IXFR=${serial - 1}`, '-y', y()]);
    expect(ixfr.stdout).not.toMatch(/Transfer failed/);
    const kixfr = await run(tools.kdig, ['@127.0.0.1', '-p', String(primary.port), 'internal', `IXFR=${serial}`, '-y', y()]);
    expect(kixfr.stdout).toMatch(/SOA/);
    expect(primary.server.transfer.stats.served.ixfr + primary.server.transfer.stats.served.ixfrAsFull + primary.server.transfer.stats.served.ixfrUpToDate).toBeGreaterThan(history);
  });

  it('from another address (127.0.0.2): refused, even with the key', async () => {
    const r = await run(tools.dig, ['-b', '127.0.0.2', '@127.0.0.1', '-p', String(primary.port), 'internal', 'AXFR', '-y', y()]);
    expect(r.stdout).toMatch(/Transfer failed/);
    const k = await run(tools.kdig, ['-b', '127.0.0.2', '@127.0.0.1', '-p', String(primary.port), 'internal', 'IXFR=1', '-y', y()]);
    expect(`${k.stdout}${k.stderr}`).toMatch(/REFUSED/);
  });
});
