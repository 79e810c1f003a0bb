import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseConfig, type ConfigIssue } from '../../src/config/load.js';
import { requireTools } from '../interop/tools.js';

/** Joins lines so a test can read off the line number of each one (first = 1). */
export const yaml = (...lines: string[]): string => `${lines.join('\n')}\n`;

/** The smallest valid zones block, for tests about other sections. */
export const ZONES = ['zones:', '  - name: internal', '    records:', '      ops: { a: ["10.0.9.9"] }'];

export function issuesOf(text: string, file = '/etc/eipdns/test.yaml'): ConfigIssue[] {
  try {
    parseConfig(text, file);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected a ConfigError, but the config loaded');
}

/** One issue, as the compact tuple the assertions compare. */
export function only(text: string): [string, number, number, string] {
  const issues = issuesOf(text);
  if (issues.length !== 1) throw new Error(`expected exactly one issue, got:\n${issues.map((i) => JSON.stringify(i)).join('\n')}`);
  const [i] = issues;
  return [i!.path, i!.line, i!.column, i!.message];
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'eipdns-config-'));
}

export function writeFile(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/**
 * A key file as the real tools print it: `tsig-keygen` (BIND) or `keymgr -t`
 * (Knot). A missing tool fails the test (requireTools), never skips it.
 */
export function realKeyFile(tool: 'tsig-keygen' | 'keymgr', name: string, algorithm = 'hmac-sha256'): string {
  const pkg = tool === 'tsig-keygen' ? 'bind9' : 'knot';
  let bin: string;
  try {
    bin = requireTools(tool)[tool];
  } catch (err) {
    throw new Error(`${(err as Error).message}; ${tool} is in the Debian package ${pkg}`);
  }
  const args = tool === 'tsig-keygen' ? ['-a', algorithm, name] : ['-t', name, algorithm];
  return execFileSync(bin, args, { encoding: 'utf8' });
}

/** The base64 secret inside a key file the tools printed. */
export function secretOf(keyFile: string): string {
  const m = /secret:? "?([A-Za-z0-9+/=]+)"?/.exec(keyFile);
  if (!m) throw new Error(`no secret in:\n${keyFile}`);
  return m[1]!;
}

/**
 * A config with the given settings, by dotted key path ("cache.stale.ttl";
 * "zones[].soa.retry" for the one zone, which has a record), values as YAML
 * text. Returns where `target`'s value sits, for asserting error positions.
 */
export function configWith(settings: Record<string, string>, target?: string): { text: string; line: number; column: number } {
  type Tree = Map<string, Tree | string>;
  const top: Tree = new Map();
  const zone: Tree = new Map();
  for (const [path, value] of Object.entries(settings)) {
    const inZone = path.startsWith('zones[].');
    const keys = (inZone ? path.slice('zones[].'.length) : path).split('.');
    let node = inZone ? zone : top;
    for (const key of keys.slice(0, -1)) {
      if (!node.has(key)) node.set(key, new Map());
      node = node.get(key) as Tree;
    }
    node.set(keys.at(-1)!, value);
  }
  const lines: string[] = [];
  let at = { line: 0, column: 0 };
  const emit = (tree: Tree, indent: number, prefix: string): void => {
    for (const [key, value] of tree) {
      const path = `${prefix}${key}`;
      if (typeof value === 'string') {
        lines.push(`${' '.repeat(indent)}${key}: ${value}`);
        if (path === target) at = { line: lines.length, column: indent + key.length + 3 };
      } else {
        lines.push(`${' '.repeat(indent)}${key}:`);
        emit(value, indent + 2, `${path}.`);
      }
    }
  };
  emit(top, 0, '');
  lines.push('zones:', '  - name: internal', '    records: { ops: { a: ["10.0.9.9"] } }');
  emit(zone, 4, 'zones[].');
  if (target !== undefined && at.line === 0) throw new Error(`configWith: ${target} is not among the settings`);
  return { text: yaml(...lines), ...at };
}
