// The inventory file in place of the API: same matching, re-read every poll,
// and a broken file is a failed poll like any other.

import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RecordSource } from '../../src/config/types.js';
import { createDiscovery, type Discovery } from '../../src/ec2/discovery.js';
import { DiscoveryConfigError } from '../../src/ec2/sources.js';
import { silentLogger } from '../../src/log.js';
import { LEVEL, captureLogger, makeConfig } from './helpers.js';

const DEMO = new URL('../../config/demo-inventory.json', import.meta.url);

// The records of config/demo.yaml.
const DEMO_RECORDS: Array<readonly [string, RecordSource]> = [
  ['db', { kind: 'elastic_ip', selector: { tag: { Role: 'db' } } }],
  ['cache', { kind: 'elastic_ip', selector: { allocationId: 'eipalloc-0cace000000000001' } }],
  ['queue', { kind: 'elastic_ip', selector: { publicIp: '203.0.113.25' } }],
];

let dir: string;
let file: string;
const running: Discovery[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'eipdns-inventory-'));
  file = join(dir, 'inventory.json');
  await copyFile(DEMO, file);
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((d) => d.stop()));
  await rm(dir, { recursive: true, force: true });
});

function discovery(records = DEMO_RECORDS, logger = silentLogger): Discovery {
  const d = createDiscovery(makeConfig(records, { inventory: file }), logger);
  running.push(d);
  return d;
}

async function editDemo(edit: (text: string) => string): Promise<void> {
  await writeFile(file, edit(await readFile(file, 'utf8')));
}

describe('inventory file', () => {
  it('answers the demo records', async () => {
    const d = discovery();
    await d.pollNow();
    expect(Object.fromEntries(d.current().records)).toEqual({
      'db.internal': ['10.0.1.10'],
      'cache.internal': ['10.0.1.11'],
      'queue.internal': [],
    });
  });

  it('picks up an edit on the next poll', async () => {
    const { logger, at } = captureLogger();
    const d = discovery(DEMO_RECORDS, logger);
    await d.pollNow();
    await editDemo((t) => t.replace('"10.0.1.10"', '"10.0.1.77"'));
    await d.pollNow();
    expect(d.current().records.get('db.internal')).toEqual(['10.0.1.77']);
    expect(d.current().generation).toBe(2);
    expect(at(LEVEL.info).filter((l) => l.msg === 'record changed')).toEqual([
      expect.objectContaining({ record: 'db.internal', from: ['10.0.1.10'], to: ['10.0.1.77'] }),
    ]);
  });

  it('keeps the last answers while the file is malformed, logging once', async () => {
    const { logger, at } = captureLogger();
    const d = discovery(DEMO_RECORDS, logger);
    await d.pollNow();
    const good = d.current();

    await writeFile(file, '{"Addresses": [ {"PublicIp": "198.51.100.10", ');
    await d.pollNow();
    await d.pollNow();
    expect(d.current().records).toBe(good.records);
    expect(d.current().stale).toBe(true);
    expect(at(LEVEL.warn)).toEqual([expect.objectContaining({ error: expect.objectContaining({ code: 'InventoryMalformed' }) })]);

    // Valid JSON, wrong shape: still a failed poll, not an empty answer.
    await writeFile(file, '{"Addresses": {"db": "10.0.1.10"}}');
    await d.pollNow();
    expect(d.current().records).toBe(good.records);

    await copyFile(DEMO, file);
    await editDemo((t) => t.replace('"10.0.1.11"', '"10.0.1.12"'));
    await d.pollNow();
    expect(d.current().stale).toBeUndefined();
    expect(d.current().records.get('cache.internal')).toEqual(['10.0.1.12']);
  });

  it('a missing file is a failed poll: no data yet', async () => {
    await rm(file);
    const { logger, at } = captureLogger();
    const d = discovery(DEMO_RECORDS, logger);
    await d.pollNow();
    expect(d.current().records.size).toBe(0);
    expect(at(LEVEL.warn)[0]?.error).toMatchObject({ code: 'InventoryMissing' });
  });

  it('static records work beside it; instances and ENIs are refused at construction', () => {
    expect(() =>
      discovery([...DEMO_RECORDS, ['s', { kind: 'static', addresses: ['192.0.2.1'] }]]),
    ).not.toThrow();
    expect(() => discovery([...DEMO_RECORDS, ['web', { kind: 'instances', tag: { Role: 'web' } }]])).toThrow(
      DiscoveryConfigError,
    );
    expect(() => discovery([['nat', { kind: 'network_interface', id: 'eni-1' }]])).toThrow(/web|nat\.internal/);
  });
});
