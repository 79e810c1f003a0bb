import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseConfig, type ConfigIssue } from '../../src/config/load.js';

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
