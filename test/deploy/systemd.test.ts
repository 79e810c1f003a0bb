// deploy/systemd/eipdns.service: verified by systemd-analyze (which must be
// installed: a missing tool fails the test), and its keys checked: a dynamic
// user with only CAP_NET_BIND_SERVICE for port 53, the usual hardening,
// reload by SIGHUP.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireTools, run } from '../interop/tools.js';
import { example, root } from './helpers.js';

const unitText = example('systemd/eipdns.service');

/** Section → key → values (a key may repeat). Comments and blank lines dropped. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (current === undefined || eq < 1) throw new Error(`not a unit line: ${line}`);
    const key = line.slice(0, eq);
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

const unit = parseUnit(unitText);
const service = unit.get('Service') ?? new Map<string, string[]>();
const value = (key: string): string | undefined => service.get(key)?.at(-1);

describe('deploy/systemd/eipdns.service', () => {
  it('passes systemd-analyze verify', async () => {
    const { 'systemd-analyze': analyze } = requireTools('systemd-analyze');
    // verify insists that ExecStart's program exists and is executable; on this
    // machine eipdns is not installed at /usr/local/bin, so the copy checked
    // runs the repository's launcher instead. Nothing else is changed.
    const dir = mkdtempSync(join(tmpdir(), 'eipdns-unit-'));
    const launcher = join(root, 'bin', 'eipdns.js');
    const copy = join(dir, 'eipdns.service');
    writeFileSync(copy, unitText.replaceAll('/usr/local/bin/eipdns', launcher));
    const r = await run(analyze, ['verify', copy]);
    // Unknown keys and bad values are only warnings (exit 0): none allowed.
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('(verify does complain about a bad unit)', async () => {
    const { 'systemd-analyze': analyze } = requireTools('systemd-analyze');
    const dir = mkdtempSync(join(tmpdir(), 'eipdns-unit-'));
    const copy = join(dir, 'eipdns.service');
    writeFileSync(copy, unitText.replaceAll('/usr/local/bin/eipdns', join(root, 'bin', 'eipdns.js')).replace('DynamicUser=yes', 'DynamicUsr=yes'));
    const r = await run(analyze, ['verify', copy]);
    expect(r.stderr).toMatch(/Unknown key 'DynamicUsr'/);
  });

  it('serves the config as a dynamic user with only CAP_NET_BIND_SERVICE', () => {
    expect(value('ExecStart')).toBe('/usr/local/bin/eipdns serve --config /etc/eipdns/eipdns.yaml');
    expect(value('DynamicUser')).toBe('yes');
    expect(value('AmbientCapabilities')).toBe('CAP_NET_BIND_SERVICE');
    expect(value('CapabilityBoundingSet')).toBe('CAP_NET_BIND_SERVICE');
    expect(value('NoNewPrivileges')).toBe('yes');
    expect(value('User')).toBeUndefined();
  });

  it('reloads with SIGHUP and stops with SIGTERM', () => {
    expect(value('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(value('KillSignal') ?? 'SIGTERM').toBe('SIGTERM');
    expect(value('Restart')).toBe('on-failure');
  });

  it('is hardened the usual way, and leaves V8 its JIT', () => {
    for (const [key, expected] of [
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'yes'],
      ['PrivateTmp', 'yes'],
      ['PrivateDevices', 'yes'],
      ['ProtectKernelTunables', 'yes'],
      ['ProtectKernelModules', 'yes'],
      ['ProtectControlGroups', 'yes'],
      ['RestrictAddressFamilies', 'AF_INET AF_INET6 AF_UNIX'],
      ['RestrictNamespaces', 'yes'],
      ['RestrictSUIDSGID', 'yes'],
      ['SystemCallFilter', '@system-service'],
    ] as const) {
      expect(value(key), key).toBe(expected);
    }
    // Node cannot run with MemoryDenyWriteExecute=yes.
    expect(value('MemoryDenyWriteExecute')).toBeUndefined();
  });

  it('orders itself before nss-lookup.target, as a local resolver', () => {
    expect(unit.get('Unit')?.get('Before')).toEqual(['nss-lookup.target']);
    expect(unit.get('Install')?.get('WantedBy')).toEqual(['multi-user.target']);
  });
});
