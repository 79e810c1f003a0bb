import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds dist/ once per run: the CLI tests spawn `node bin/eipdns.js`.
    globalSetup: ['test/global-setup.ts'],
    // Integration tests bind real sockets and spawn real peers (dnsmasq, dig);
    // give them room on a 2-core CI machine without hiding a hang forever.
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
    // In CI a JSON report as well, from which .ci/run prints a plain
    // "N passed, N failed" closing line.
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: { json: 'test-results.json' },
    // The AWS SDK warns on Node 20 that releases from 2027 need Node 22; the
    // notice is real (see README) but repeats in every worker and child.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
