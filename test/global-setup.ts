// Vitest globalSetup: bundles src/ into dist/ once per test run, exactly as
// `npm run build` does (scripts/build.mjs, esbuild), so the tests that spawn
// the real CLI (`node bin/eipdns.js`) run the bundle that ships, and a
// bundling mistake (a module left out, a broken dynamic import, a dependency
// that cannot be bundled) fails them. Everything else imports src/ directly.
//
// The bundler only strips types; `npm run typecheck` is the gate for them.

import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export default function setup(): void {
  const started = Date.now();
  const result = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, encoding: 'utf8' });
  if (result.error) throw new Error(`global setup: cannot run scripts/build.mjs: ${result.error.message}`);
  const entry = join(root, 'dist', 'eipdns.js');
  const fresh = existsSync(entry) && statSync(entry).mtimeMs >= started - 1000;
  if (result.status !== 0 || !fresh) {
    throw new Error(
      `global setup: \`node scripts/build.mjs\` did not produce ${entry} (exit ${result.status}):\n${result.stdout}${result.stderr}`,
    );
  }
}
