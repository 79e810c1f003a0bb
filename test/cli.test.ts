// The command line as an operator uses it: `node bin/eipdns.js` (the bundle
// in dist/, built by test/global-setup.ts) in a child process, with real
// files, real signals and dig as the client.

import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeEc2 } from './ec2/fake-ec2.js';
import { bin, root, spawnServe, type ServeProcess } from './helpers/cli.js';
import { query } from './helpers/dns-client.js';
import { dig, freePort, requireTools, run, sleep, startDnsmasq, stopProcess, track, waitFor, type Dnsmasq } from './interop/tools.js';

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

const eipdns = (...args: string[]) => run(process.execPath, [bin, ...args], 30_000);

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'eipdns-cli-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('eipdns --help / --version / usage errors', () => {
  it('--help prints the usage and exits 0', async () => {
    const r = await eipdns('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage:/);
    expect(r.stdout).toMatch(/eipdns serve --config FILE/);
    expect(r.stdout).toMatch(/eipdns check --config FILE/);
    expect(r.stdout).toMatch(/eipdns probe --config FILE \[--server HOST:PORT\]/);
  });

  it("--version prints package.json's version", async () => {
    const r = await eipdns('--version');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('exits 2 without a command, with an unknown command, or without --config', async () => {
    expect((await eipdns()).code).toBe(2);
    const unknown = await eipdns('frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
    const noConfig = await eipdns('check');
    expect(noConfig.code).toBe(2);
    expect(noConfig.stderr).toMatch(/--config FILE is required/);
  });
});

describe('eipdns check', () => {
  it('accepts config/demo.yaml', async () => {
    const r = await eipdns('check', '--config', join(root, 'config', 'demo.yaml'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/demo\.yaml: ok/);
  });

  it('accepts config/example.yaml (every key, with its default)', async () => {
    const r = await eipdns('check', '--config', join(root, 'config', 'example.yaml'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('rejects a bad config with exit 2, naming file:line:column and the key path of every problem', async () => {
    const file = join(tempDir(), 'bad.yaml');
    writeFileSync(
      file,
      [
        'listen: ["127.0.0.1:5353"]',
        'upstream:',
        '  servers: ["127.0.0.1:5354"]',
        '  timout_ms: 1000',
        'zones:',
        '  - name: internal',
        '    ttl: -3',
        '    records:',
        '      db: { a: ["10.0.0.1"] }',
        '',
      ].join('\n'),
    );
    const r = await eipdns('check', '--config', file);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${file}:4:3: upstream.timout_ms:`);
    expect(r.stderr).toMatch(/did you mean "timeout_ms"/);
    expect(r.stderr).toContain(`${file}:7:10: zones[0].ttl:`);
  });

  it('rejects a missing file and a YAML syntax error with exit 2', async () => {
    const dir = tempDir();
    const missing = await eipdns('check', '--config', join(dir, 'nope.yaml'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(join(dir, 'nope.yaml'));
    writeFileSync(join(dir, 'syntax.yaml'), 'listen: [\n');
    const syntax = await eipdns('check', '--config', join(dir, 'syntax.yaml'));
    expect(syntax.code).toBe(2);
    expect(syntax.stderr).toMatch(new RegExp(`${join(dir, 'syntax.yaml').replace(/[.]/g, '\\.')}:\\d+:\\d+: `));
  });
});

describe('eipdns serve (demo config, inventory file)', () => {
  let tools: Record<'dig' | 'dnsmasq', string>;
  /** The README's stand-in for the VPC resolver: a public name answered with db's Elastic IP. */
  let vpcResolver: Dnsmasq;
  let dir: string;
  let config: string;
  let inventoryFile: string;
  let demoYaml: string;
  let port: number;
  let adminPort: number;
  let serve: ServeProcess;

  const a = async (name: string): Promise<string[]> => {
    const r = await dig(tools.dig, 'dig', { port, name });
    return r.answer.filter((x) => x.type === 'A').map((x) => x.data);
  };
  const logged = (msg: string): Array<Record<string, unknown>> => serve.logged(msg);

  beforeAll(async () => {
    tools = requireTools('dig', 'dnsmasq');
    vpcResolver = await startDnsmasq(tools.dnsmasq, { args: ['--address=/api.example.test/198.51.100.10'] });
    dir = tempDir();
    config = join(dir, 'demo.yaml');
    inventoryFile = join(dir, 'demo-inventory.json');
    copyFileSync(join(root, 'config', 'demo-inventory.json'), inventoryFile);
    // The demo listens on a fixed 5353; run the copy on a free port. A port
    // taken between the probe and the bind is retried.
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      adminPort = await freePort();
      demoYaml = readFileSync(join(root, 'config', 'demo.yaml'), 'utf8')
        .replace('127.0.0.1:5353', `127.0.0.1:${port}`)
        .replace('127.0.0.1:5354', `127.0.0.1:${vpcResolver.port}`)
        .replace('127.0.0.1:9153', `127.0.0.1:${adminPort}`);
      expect(demoYaml).toContain(`127.0.0.1:${port}`);
      expect(demoYaml).toContain(`127.0.0.1:${vpcResolver.port}`);
      expect(demoYaml).toContain(`127.0.0.1:${adminPort}`);
      writeFileSync(config, demoYaml);
      serve = spawnServe(config, { cwd: dir });
      try {
        await waitFor('eipdns serve to listen', () => {
          if (serve.child.exitCode !== null) throw new Error(`eipdns exited ${serve.child.exitCode}:\n${serve.output()}`);
          return logged('listening').length > 0 ? true : undefined;
        });
        break;
      } catch (err) {
        await stopProcess(serve.child);
        if (!/EADDRINUSE/.test(serve.output()) || attempt >= 3) throw err;
      }
    }
  }, 30_000);

  afterAll(async () => {
    if (serve) await stopProcess(serve.child);
    await vpcResolver?.stop();
  });

  it('answers the demo names from the inventory', async () => {
    // The first poll starts at once but is not awaited: wait for data.
    await waitFor('db.internal to have an answer', async () => ((await a('db.internal')).length > 0 ? true : undefined));
    expect(await a('db.internal')).toEqual(['10.0.1.10']);
    expect(await a('cache.internal')).toEqual(['10.0.1.11']);
    // queue's Elastic IP is not associated: NODATA.
    const queue = await dig(tools.dig, 'dig', { port, name: 'queue.internal' });
    expect(queue.status).toBe('NOERROR');
    expect(queue.answer).toEqual([]);
    // The README's rewrite demo: the upstream says db's public IP, eipdns answers its private one.
    expect(await a('api.example.test')).toEqual(['10.0.1.10']);
  });

  it('follows an edit of the inventory within a few poll intervals', async () => {
    const text = readFileSync(inventoryFile, 'utf8');
    expect(text).toContain('"10.0.1.10"');
    writeFileSync(inventoryFile, text.replace('"10.0.1.10"', '"10.0.1.20"'));
    // Bounded wait, no timing assertion: poll_interval_ms is 1000 in the demo.
    const moved = await waitFor(
      'db.internal to move to 10.0.1.20',
      async () => {
        const now = await a('db.internal');
        return now[0] === '10.0.1.20' ? now : undefined;
      },
      15_000,
      200,
    );
    expect(moved).toEqual(['10.0.1.20']);
    expect(await a('cache.internal')).toEqual(['10.0.1.11']);
    // A public name for db's Elastic IP follows it too (the cached answer is rewritten on the way out).
    expect(await a('api.example.test')).toEqual(['10.0.1.20']);
    // The README's `eipdns status --config config/demo.yaml`: when db moved, from where, to where.
    const status = await eipdns('status', '--config', config);
    expect(status).toMatchObject({ code: 0, stderr: '' });
    expect(status.stdout).toMatch(/^db\.internal +10\.0\.1\.20 .*: 10\.0\.1\.10 \(i-\w+\) → 10\.0\.1\.20 \(i-\w+\)$/m);
  });

  it('keeps serving the running config when SIGHUP finds the file broken', async () => {
    writeFileSync(config, `${demoYaml}\nbogus_key: 1\n`);
    const before = logged('reload failed').length;
    serve.child.kill('SIGHUP');
    const failures = await waitFor('"reload failed" in the log', () => {
      const lines = logged('reload failed');
      return lines.length > before ? lines : undefined;
    });
    expect(JSON.stringify(failures.at(-1))).toMatch(/bogus_key/);
    expect(serve.child.exitCode).toBeNull();
    expect(await a('db.internal')).toEqual(['10.0.1.20']);
    expect(await a('cache.internal')).toEqual(['10.0.1.11']);
  });

  it('applies a fixed config on the next SIGHUP', async () => {
    writeFileSync(config, demoYaml.replace(/^(\s+)queue:.*$/m, (line, indent: string) => `${line}\n${indent}ops:   { a: ["10.0.9.9"] }`));
    expect(readFileSync(config, 'utf8')).toContain('ops:');
    const before = logged('config reloaded').length;
    serve.child.kill('SIGHUP');
    await waitFor('"config reloaded" in the log', () => (logged('config reloaded').length > before ? true : undefined));
    expect(await a('ops.internal')).toEqual(['10.0.9.9']);
    // Discovery data carried over the reload: the moved address is still served.
    expect(await a('db.internal')).toEqual(['10.0.1.20']);
  });

  it('polls at once on SIGUSR2 instead of waiting for the next tick', async () => {
    // A one-minute poll interval: without the signal the move below would not
    // be seen within waitFor's bound.
    writeFileSync(config, readFileSync(config, 'utf8').replace(/poll_interval_ms: \d+/, 'poll_interval_ms: 60000'));
    expect(readFileSync(config, 'utf8')).toContain('poll_interval_ms: 60000');
    const before = logged('config reloaded').length;
    serve.child.kill('SIGHUP');
    await waitFor('"config reloaded" in the log', () => (logged('config reloaded').length > before ? true : undefined));
    await sleep(300); // let the new discovery's first poll finish before the edit
    writeFileSync(inventoryFile, readFileSync(inventoryFile, 'utf8').replace('"10.0.1.20"', '"10.0.1.30"'));
    serve.child.kill('SIGUSR2');
    const moved = await waitFor('db.internal to move to 10.0.1.30', async () => {
      const ips = await a('db.internal');
      return ips[0] === '10.0.1.30' ? ips : undefined;
    }, 5_000);
    expect(moved).toEqual(['10.0.1.30']);
    expect(logged('poll requested')).toHaveLength(1);
  });

  it('exits 0 on SIGTERM', async () => {
    const exited = serve.exited;
    serve.child.kill('SIGTERM');
    const code = await Promise.race([exited, sleep(10_000).then(() => 'still running' as const)]);
    expect(code).toBe(0);
    expect(logged('shutting down')).toHaveLength(1);
  });
});

describe('the README quick start', () => {
  it('`npm run demo` serves the demo on 127.0.0.1:5353', async () => {
    const tools = requireTools('dig', 'npm');
    // The exact command the README gives; it needs port 5353 free (CI: nothing else uses it).
    const child = track(spawn(tools.npm, ['run', 'demo'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true }));
    let output = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (output += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (output += s));
    try {
      const addresses = await waitFor('the demo to answer db.internal', async () => {
        if (child.exitCode !== null) throw new Error(`npm run demo exited ${child.exitCode}:\n${output}`);
        const r = await dig(tools.dig, 'dig', { port: 5353, name: 'db.internal' }).catch(() => undefined);
        const a = r?.answer.filter((x) => x.type === 'A').map((x) => x.data) ?? [];
        return a.length > 0 ? a : undefined;
      });
      expect(addresses).toEqual(['10.0.1.10']);
      const cache = await dig(tools.dig, 'dig', { port: 5353, name: 'cache.internal' });
      expect(cache.answer.map((x) => x.data)).toEqual(['10.0.1.11']);
    } finally {
      // npm runs node as its child: signal the whole process group.
      process.kill(-child.pid!, 'SIGTERM');
      await stopProcess(child);
    }
  });
});

describe('the bundle as shipped', () => {
  it('runs from a copy of bin/ and dist/ alone: no node_modules, no package.json', async () => {
    const dir = tempDir();
    cpSync(join(root, 'bin'), join(dir, 'bin'), { recursive: true });
    cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
    const copied = join(dir, 'bin', 'eipdns.js');
    const version = await run(process.execPath, [copied, '--version']);
    expect(version).toMatchObject({ code: 0, stderr: '' });
    // Embedded at build time: there is no package.json to read here.
    expect(version.stdout.trim()).toBe(pkg.version);
    const check = await run(process.execPath, [copied, 'check', '--config', join(root, 'config', 'demo.yaml')]);
    expect(check).toMatchObject({ code: 0, stderr: '' });
  });

  it('`serve` with the EC2 API prints nothing but JSON lines, the SDK\'s Node version warning included', async () => {
    // The API path loads the SDK (a separate chunk of the bundle) and, on
    // Node 20, the SDK's eight-line NodeVersionSupportWarning.
    const fake = await startFakeEc2();
    const instance = fake.addInstance({ privateIps: ['10.0.1.10'] }).instanceId;
    fake.associate(fake.addAddress({ publicIp: '198.51.100.10', tags: { Role: 'db' } }).allocationId, { instanceId: instance });
    const dir = tempDir();
    const port = await freePort();
    const config = join(dir, 'eipdns.yaml');
    writeFileSync(
      config,
      [
        `listen: ["127.0.0.1:${port}"]`,
        'upstream: { servers: ["127.0.0.1:9"], timeout_ms: 300 }',
        `ec2: { region: us-east-1, endpoint: "${fake.url}", poll_interval_ms: 60000 }`,
        'zones:',
        '  - name: internal',
        '    records:',
        '      db: { elastic_ip: { tag: { Role: db } } }',
        '',
      ].join('\n'),
    );
    // vitest.config.ts silences the warning for the test processes; the
    // server must cope without that.
    const env: NodeJS.ProcessEnv = { ...process.env, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };
    delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    delete env.AWS_SESSION_TOKEN;
    delete env.AWS_PROFILE;
    const serve = spawnServe(config, { cwd: dir, env });
    const child = serve.child;
    try {
      const addresses = await waitFor('db.internal from the EC2 API', async () => {
        if (child.exitCode !== null) throw new Error(`eipdns exited ${child.exitCode}:\n${serve.output()}`);
        const r = await query(port, 'db.internal', 'A', { timeoutMs: 500 });
        return r.addresses.length > 0 ? r.addresses : undefined;
      });
      expect(addresses).toEqual(['10.0.1.10']);
    } finally {
      expect(await stopProcess(child)).toBe(0);
      await fake.close();
    }
    expect(serve.stderr()).toBe('');
    const lines = serve.stdout().split('\n').filter((l) => l !== '');
    for (const line of lines) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
    const warnings = lines.map((l) => JSON.parse(l) as { msg?: string }).filter((l) => l.msg?.startsWith('NodeVersionSupportWarning'));
    // The SDK warns below Node 22 only.
    expect(warnings).toHaveLength(Number(process.versions.node.split('.')[0]) < 22 ? 1 : 0);
  });
});
