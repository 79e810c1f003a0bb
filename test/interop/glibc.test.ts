// glibc's own stub resolver (getaddrinfo/gethostbyname via `getent`) against
// eipdns. glibc only ever talks to port 53 of the nameserver in
// /etc/resolv.conf, so the test runs inside a private network and mount
// namespace (`unshare --net --mount`, needs root, as in CI) where eipdns owns
// 127.0.0.1:53 and /etc/resolv.conf is a bind-mounted temp file. See
// netns-getent.sh for the steps inside the namespace.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inventory, inventoryConfig } from '../helpers/server.js';
import { requireTools, run } from './tools.js';

const here = dirname(fileURLToPath(import.meta.url));

let tools: Record<'unshare' | 'ip' | 'getent' | 'dig' | 'bash', string>;
let dir: string;
let sections: Map<string, string>;
let raw: { code: number; stdout: string; stderr: string };

beforeAll(async () => {
  tools = requireTools('unshare', 'ip', 'getent', 'dig', 'bash');
  dir = mkdtempSync(join(tmpdir(), 'eipdns-netns-'));
  writeFileSync(
    join(dir, 'inventory.json'),
    inventory([
      { publicIp: '198.51.100.10', allocationId: 'eipalloc-0db00000000000001', privateIp: '10.0.1.10', tags: { Role: 'db' } },
      { publicIp: '198.51.100.11', allocationId: 'eipalloc-0cace000000000001', privateIp: '10.0.1.11', tags: { Role: 'cache' } },
    ]),
  );
  writeFileSync(
    join(dir, 'eipdns.yaml'),
    inventoryConfig({
      listen: '127.0.0.1:53',
      upstream: '127.0.0.1:5354', // nothing listens there inside the namespace
      timeoutMs: 500,
      allow: ['127.0.0.0/8', '::1/128'],
      records: ['db:    { elastic_ip: { tag: { Role: db } } }', 'cache: { elastic_ip: { allocation_id: eipalloc-0cace000000000001 } }'],
    }),
  );
  raw = await run(tools.unshare, ['--net', '--mount', tools.bash, join(here, 'netns-getent.sh'), dir], 30_000);
  if (raw.code !== 0) {
    throw new Error(
      `the namespace script failed (exit ${raw.code}); it needs root for unshare --net --mount and port 53:\n${raw.stdout}${raw.stderr}`,
    );
  }
  sections = new Map();
  for (const part of raw.stdout.split(/^--- /m).slice(1)) {
    const nl = part.indexOf('\n');
    sections.set(part.slice(0, nl).trim(), part.slice(nl + 1));
  }
}, 40_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** getent ahosts* lines: "10.0.1.10       STREAM db.internal" → addresses, in order, without repeats. */
function addresses(text: string | undefined): string[] {
  const out: string[] = [];
  for (const line of (text ?? '').split('\n')) {
    const ip = line.trim().split(/\s+/)[0];
    if (ip && /^[0-9a-f.:]+$/i.test(ip) && !out.includes(ip)) out.push(ip);
  }
  return out;
}

describe('glibc resolver (getent) through eipdns on 127.0.0.1:53', () => {
  it('ran to the end', () => {
    expect(sections.has('end')).toBe(true);
  });

  it('getent ahostsv4 resolves a private name (A only)', () => {
    const text = sections.get('ahostsv4 db.internal');
    expect(addresses(text)).toEqual(['10.0.1.10']);
    expect(text).toMatch(/^10\.0\.1\.10\s+STREAM\s+db\.internal$/m);
  });

  it('getent ahosts (A and AAAA in parallel on one socket) gets the A record and NODATA for AAAA', () => {
    expect(addresses(sections.get('ahosts db.internal'))).toEqual(['10.0.1.10']);
  });

  it('getent hosts (gethostbyname, AAAA first) falls back to the A record', () => {
    expect(sections.get('hosts cache.internal')?.trim()).toMatch(/^10\.0\.1\.11\s+cache\.internal$/);
  });

  it('an unknown private name is "not found" (getent exit 2)', () => {
    expect(sections.get('ahostsv4 nope.internal')?.trim()).toBe('exit 2');
  });
});
