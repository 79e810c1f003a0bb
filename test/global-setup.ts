// Vitest globalSetup: compiles src/ to dist/ once per test run, so tests that
// spawn the real CLI (`node bin/eipdns.js`) run the code under test rather
// than whatever an earlier build left behind.
//
// A type error elsewhere in src/ does not stop the run: tsc still emits
// JavaScript, `npm run typecheck` is the gate for types, and failing every
// unit test because one unrelated file does not type-check would hide real
// results. Only a build that produced no CLI at all aborts the run.

import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export default function setup(): void {
  const started = Date.now();
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, encoding: 'utf8' });
  if (result.error) throw new Error(`global setup: cannot run tsc: ${result.error.message}`);

  const cli = join(root, 'dist', 'cli.js');
  const fresh = existsSync(cli) && statSync(cli).mtimeMs >= started - 1000;
  const output = `${result.stdout}${result.stderr}`.trim();
  if (!fresh) {
    throw new Error(`global setup: \`tsc -p tsconfig.build.json\` did not produce ${cli} (exit ${result.status}):\n${output}`);
  }
  if (result.status !== 0) {
    process.stderr.write(
      `\n[global setup] tsc -p tsconfig.build.json reported errors (exit ${result.status}); dist/ was emitted anyway:\n${output}\n\n`,
    );
  }
}
