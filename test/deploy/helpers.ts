// Shared by the deploy example tests: the example files, and the eipdns
// config an example embeds, loaded by the real loader.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function example(path: string): string {
  return readFileSync(join(root, 'deploy', path), 'utf8');
}

/** An embedded config written where the example puts it, then loaded as `eipdns serve` would. */
export function loadEmbedded(text: string, file = 'eipdns.yaml'): Config {
  const dir = mkdtempSync(join(tmpdir(), 'eipdns-deploy-'));
  const path = join(dir, file);
  writeFileSync(path, text);
  return loadConfig(path);
}

/** Narrows an unknown YAML/JSON value to a record, failing the test when it is not one. */
export function obj(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what} is not a mapping`);
  return value as Record<string, unknown>;
}

export function list(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${what} is not a list`);
  return value;
}
