// A secondary-only eipdns as an operator runs it (`node bin/eipdns.js serve`
// in a child process): no AWS credentials anywhere in its environment, an EC2
// endpoint in its config that it must never call, and still it serves the
// zone it copies from its primary.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeEc2, type FakeEc2 } from '../ec2/fake-ec2.js';
import { spawnServe } from '../helpers/cli.js';
import { query } from '../helpers/dns-client.js';
import { inventory, startTestServer, type TestServer } from '../helpers/server.js';
import { freePort, sleep, stopProcess, waitFor } from '../interop/tools.js';
import { newSecret, primaryYaml, secondaryYaml } from './helpers.js';

const secret = newSecret();
let fake: FakeEc2;
let primary: TestServer;
let dir: string;

beforeAll(async () => {
  fake = await startFakeEc2();
  primary = await startTestServer(primaryYaml({ records: ['db: { a: ["10.0.1.10"] }'] }), {
    files: { 'inventory.json': inventory([]), 'transfer.key': secret },
  });
  dir = mkdtempSync(join(tmpdir(), 'eipdns-secondary-'));
});
afterAll(async () => {
  await primary?.close();
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a secondary-only eipdns', () => {
  it('needs no AWS credentials and never calls EC2, even with an endpoint configured', async () => {
    const port = await freePort();
    const yaml = secondaryYaml({ listen: `127.0.0.1:${port}`, primaries: [`127.0.0.1:${primary.port}`] }).replace(
      'zones:',
      `ec2:\n  region: us-east-1\n  endpoint: "${fake.url}"\n  poll_interval_ms: 250\nzones:`,
    );
    writeFileSync(join(dir, 'eipdns.yaml'), yaml);
    writeFileSync(join(dir, 'transfer.key'), secret);
    // Nothing the SDK's credential chain could find: no AWS_* variables, an empty HOME, no IMDS.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
    Object.assign(env, { HOME: dir, AWS_EC2_METADATA_DISABLED: 'true' });
    const serve = spawnServe(join(dir, 'eipdns.yaml'), { env });
    try {
      await waitFor('the secondary to answer from its copy', async () => {
        if (serve.child.exitCode !== null) throw new Error(`eipdns exited: ${serve.output()}`);
        const a = await query(port, 'db.internal', 'A', { timeoutMs: 300 }).catch(() => undefined);
        return a?.addresses.includes('10.0.1.10') ? true : undefined;
      }, 15_000);
      // Several poll intervals of a config that polled would have called by now.
      await sleep(1_000);
      expect(fake.calls).toEqual([]);
      expect(serve.output()).not.toMatch(/credential|EC2 discovery/i);
    } finally {
      await stopProcess(serve.child);
    }
  });
});

describe('readiness of a secondary zone', () => {
  it('is not ready until the zone holds a copy', async () => {
    const dead = await freePort();
    const s = await startTestServer(secondaryYaml({ primaries: [`127.0.0.1:${dead}`] }), { files: { 'transfer.key': secret } });
    try {
      const state = s.server.readiness.state();
      expect(state.ready).toBe(false);
      expect(state.waiting).toContain(`zone internal: waiting for the first transfer from 127.0.0.1:${dead}`);
    } finally {
      await s.close();
    }
    const ok = await startTestServer(secondaryYaml({ primaries: [`127.0.0.1:${primary.port}`] }), { files: { 'transfer.key': secret } });
    try {
      await waitFor('the copy', () => (ok.server.readiness.state().ready ? true : undefined));
    } finally {
      await ok.close();
    }
  });
});
