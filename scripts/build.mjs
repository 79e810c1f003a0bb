// `npm run build` (and `npm ci`, through `prepare`): bundles src/cli.ts into
// dist/ with esbuild, every dependency included, so the program runs with no
// node_modules at all (the container image ships dist/ and bin/ only).
//
// Why a bundle: `@aws-sdk/client-ec2` as published loads every EC2 operation
// (~130 MB RSS for an idle server); bundled, only the commands eipdns sends
// survive tree-shaking. Why code splitting rather than one file: discovery
// loads the SDK with a dynamic import() so that configs that never call the
// API (an inventory file, static records) never load it. Inside a single-file
// bundle esbuild has to wrap a dynamically imported module and everything it
// imports in lazy initialisers, and wrapped modules are not tree-shaken: the
// whole of client-ec2 came back (3.8 MB, every command evaluated). With
// splitting, the SDK lands in its own chunks, still tree-shaken, and loads on
// first use. Whitespace is minified too, since V8 keeps the source text
// (81 -> 71 MB RSS with the API in use); identifiers are not, so stack
// traces and logged error names stay readable. (Figures: README, "Memory".)
//
// Type checking is not done here: `npm run typecheck` (tsc --noEmit) is the
// gate for types; esbuild only strips them.

import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * @param {{ outdir?: string, quiet?: boolean }} [options]
 * @returns {Promise<{ entry: string, files: string[] }>}
 */
export async function buildBundle(options = {}) {
  const outdir = options.outdir ?? join(root, 'dist');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  // A stale tsc build (dist/cli.js, dist/ec2/…) or old chunks must not linger.
  rmSync(outdir, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: { eipdns: 'src/cli.ts' },
    outdir,
    bundle: true,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // The SDK's ES module builds (dist-es) tree-shake; its CommonJS ones do not.
    mainFields: ['module', 'main'],
    // Some bundled CommonJS (yaml, dns2) calls require() on Node built-ins,
    // which an ES module has no binding for.
    banner: { js: "import { createRequire as __eipdnsCreateRequire } from 'node:module';\nconst require = __eipdnsCreateRequire(import.meta.url);" },
    // `eipdns --version` in the image, where there is no package.json.
    define: { __EIPDNS_VERSION__: JSON.stringify(pkg.version) },
    minifySyntax: true,
    minifyWhitespace: true,
    sourcemap: 'linked',
    legalComments: 'linked',
    metafile: true,
    logLevel: options.quiet ? 'error' : 'warning',
  });
  if (result.errors.length > 0) throw new Error('esbuild failed');
  const files = Object.keys(result.metafile.outputs).map((f) => join(root, f));
  return { entry: join(outdir, 'eipdns.js'), files };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { files } = await buildBundle();
  const js = files.filter((f) => f.endsWith('.js'));
  const { statSync } = await import('node:fs');
  const bytes = js.reduce((n, f) => n + statSync(f).size, 0);
  console.log(`dist/: ${js.length} file(s), ${(bytes / 1024).toFixed(0)} KiB of JavaScript`);
}
