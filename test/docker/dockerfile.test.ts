// docker/Dockerfile without Docker: linted with dockerfile-utils (the CI lint
// gate), the properties issue 7 asks of the image read from its instructions,
// the build context checked against .dockerignore, and the baked config
// loaded by the real loader from the layout the image gives it.
// docker/smoke.sh builds and runs the image for real.

import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validate } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dockerfile = readFileSync(join(root, 'docker', 'Dockerfile'), 'utf8');

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

/** Instructions with continuation lines joined and comments dropped. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) return;
    if (pending === '') start = i + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const full = pending + line;
    pending = '';
    const [keyword = '', ...rest] = full.split(/\s+/);
    out.push({ keyword: keyword.toUpperCase(), args: rest.join(' '), line: start });
  });
  return out;
}

const all = instructions(dockerfile);
const stages = all.reduce<Instruction[][]>((acc, ins) => {
  if (ins.keyword === 'FROM') acc.push([]);
  acc.at(-1)?.push(ins);
  return acc;
}, []);
const final = stages.at(-1) ?? [];
const only = (stage: readonly Instruction[], keyword: string): Instruction => {
  const found = stage.filter((i) => i.keyword === keyword);
  expect(found, keyword).toHaveLength(1);
  return found[0]!;
};

describe('docker/Dockerfile', () => {
  it('passes dockerfile-utils lint with no error or warning', () => {
    const problems = validate(dockerfile).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
    expect(problems).toEqual([]);
  });

  it('(the linter does catch mistakes)', () => {
    const broken = dockerfile.replace('HEALTHCHECK --interval', 'HEALTHCHECK --intervl');
    expect(broken).not.toBe(dockerfile);
    expect(validate(broken).map((d) => d.message)).toContain('Unknown flag: intervl');
  });

  it('is multi-stage on ARG BASE_IMAGE=node:22-bookworm-slim', () => {
    expect(all[0]).toMatchObject({ keyword: 'ARG', args: 'BASE_IMAGE=node:22-bookworm-slim' });
    expect(stages.map((s) => s[0]!.args)).toEqual(['${BASE_IMAGE} AS build', '${BASE_IMAGE}']);
  });

  it('ships the bundle and the baked config only: one COPY from the build stage, no npm in the final stage', () => {
    const copies = final.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD');
    expect(copies.map((c) => c.args)).toEqual(['--from=build /out/ /']);
    expect(final.filter((i) => i.keyword === 'RUN')).toEqual([]);
    const build = stages[0]!;
    const out = build.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');
    expect(out).toContain('cp -R bin dist /out/opt/eipdns/');
    expect(out).not.toMatch(/node_modules[^\n]*\/out/);
  });

  it('runs as numeric uid 65532, `eipdns serve --config /etc/eipdns/eipdns.yaml`, probe as HEALTHCHECK', () => {
    expect(only(final, 'USER').args).toBe('65532:65532');
    expect(JSON.parse(only(final, 'ENTRYPOINT').args)).toEqual(['eipdns']);
    expect(JSON.parse(only(final, 'CMD').args)).toEqual(['serve', '--config', '/etc/eipdns/eipdns.yaml']);
    const health = only(final, 'HEALTHCHECK').args;
    // Exec form: the image needs no shell for it.
    const cmd = /CMD (\[.*\])$/.exec(health)?.[1];
    expect(JSON.parse(cmd ?? 'null')).toEqual(['eipdns', 'probe', '--config', '/etc/eipdns/eipdns.yaml']);
  });

  it('sends docker build every file it COPYs, and nothing else (.dockerignore)', () => {
    const allowed = readFileSync(join(root, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('!'))
      .map((l) => l.slice(1).replace(/\/$/, ''));
    expect(readFileSync(join(root, '.dockerignore'), 'utf8')).toMatch(/^\*$/m);
    const sources = all
      .filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from'))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1))
      .map((s) => s.replace(/\/$/, ''));
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) expect(allowed, source).toContain(source);
  });

  it("bakes a config the real loader accepts, as the image lays it out: port 53, the demo's inventory beside it", () => {
    // /etc/eipdns/ in the image holds exactly these two files.
    const etc = mkdtempSync(join(tmpdir(), 'eipdns-etc-'));
    copyFileSync(join(root, 'docker', 'eipdns.yaml'), join(etc, 'eipdns.yaml'));
    copyFileSync(join(root, 'config', 'demo-inventory.json'), join(etc, 'demo-inventory.json'));
    expect(dockerfile).toContain('COPY docker/eipdns.yaml config/demo-inventory.json /out/etc/eipdns/');
    const config = loadConfig(join(etc, 'eipdns.yaml'));
    expect(config.listen).toEqual([{ host: '0.0.0.0', port: 53 }]);
    expect(config.ec2.inventory).toBe(join(etc, 'demo-inventory.json'));
    expect(config.zones[0]?.records.map((r) => r.fqdn)).toContain('db.internal');
  });
});
