#!/usr/bin/env node
// Thin launcher: the CLI is bundled into dist/ by `npm ci` (the prepare
// script) or `npm run build` (scripts/build.mjs).
import { main } from '../dist/eipdns.js';

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    console.error(err instanceof Error ? err.stack ?? err.message : String(err));
    process.exitCode = 1;
  },
);
