// Command line: `eipdns serve|check|claim|probe`. Exit codes: 0 ok, 1 runtime
// failure, 2 bad usage or bad config.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config/load.js';
import type { Config } from './config/types.js';
import { createLogger, routeProcessWarnings, type Logger } from './log.js';
import { runProbe } from './probe.js';
import { startServer } from './server.js';

const USAGE = `eipdns — split-horizon DNS for AWS VPCs: private names from Elastic IP
associations, everything else forwarded only to the VPC resolver.

Usage:
  eipdns serve --config FILE      run the server (SIGHUP reloads FILE, SIGUSR2 polls
                                  EC2 at once, SIGTERM stops)
  eipdns check --config FILE      validate FILE; exit 0 if good, 2 with the problems
  eipdns claim NAME --config FILE [--force]
                                  associate NAME's Elastic IP with this instance
                                  (run at boot; refuses to take it from another
                                  running instance unless --force)
  eipdns probe --config FILE [--server HOST:PORT]
                                  health check: one DNS query (the first zone's SOA)
                                  to the first listen address or HOST:PORT; exit 0
                                  on an answer, 1 on none
  eipdns --help | --version
`;

export async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        force: { type: 'boolean' },
        server: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
      },
    });
  } catch (err) {
    process.stderr.write(`eipdns: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const [command, ...rest] = positionals;
  if (command === undefined) {
    process.stderr.write(USAGE);
    return 2;
  }
  if (!['serve', 'check', 'claim', 'probe'].includes(command)) {
    process.stderr.write(`eipdns: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  if (values.config === undefined) {
    process.stderr.write(`eipdns ${command}: --config FILE is required\n`);
    return 2;
  }
  const config = readConfig(values.config);
  if (config === undefined) return 2;

  switch (command) {
    case 'check':
      process.stdout.write(`${config.file}: ok (${summary(config)})\n`);
      return 0;
    case 'serve':
      return serve(config);
    case 'probe':
      return runProbe(config, values.server !== undefined ? { server: values.server } : {}, { out: process.stdout, err: process.stderr });
    default: {
      const name = rest[0];
      if (name === undefined) {
        process.stderr.write('eipdns claim: NAME is required (e.g. db.internal)\n');
        return 2;
      }
      routeProcessWarnings((_, text) => process.stderr.write(`eipdns claim: warning: ${text}\n`));
      const { claim } = await import('./ec2/claim.js');
      return claim(config, name, { force: values.force === true, out: process.stdout, err: process.stderr });
    }
  }
}

function readConfig(file: string): Config | undefined {
  try {
    return loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return undefined;
    }
    throw err;
  }
}

function summary(config: Config): string {
  const records = config.zones.reduce((n, z) => n + z.records.length, 0);
  return `${config.zones.length} zone(s), ${records} record(s), upstream ${config.upstream.servers.map((s) => `${s.host}:${s.port}`).join(', ')}`;
}

async function serve(initial: Config): Promise<number> {
  const logger = createLogger(initial.log.level);
  routeProcessWarnings((w, text) => logger.warn({ warning: w.name, ...(w.code !== undefined ? { code: w.code } : {}) }, text));
  logConfig(logger, initial, 'config loaded');
  let server;
  try {
    server = await startServer(initial, { logger });
  } catch (err) {
    // EADDRINUSE, or EACCES for port 53 without CAP_NET_BIND_SERVICE: say so plainly.
    logger.fatal({ err: (err as Error).message, listen: initial.listen }, 'cannot start');
    return 1;
  }
  const running = server;

  // Reloads run one after another: two quick SIGHUPs must not interleave.
  let reloading = Promise.resolve();
  const reload = async (): Promise<void> => {
    try {
      const next = loadConfig(initial.file);
      await running.reload(next);
      logger.level = next.log.level;
      logConfig(logger, next, 'config reloaded');
    } catch (err) {
      logger.error({ file: initial.file, err: (err as Error).message }, 'reload failed; keeping the running config');
    }
  };
  process.on('SIGHUP', () => {
    reloading = reloading.then(reload);
  });
  // For failover scripts on this host: poll EC2 now instead of at the next
  // tick. (SIGUSR1 belongs to Node's inspector.)
  process.on('SIGUSR2', () => {
    logger.info('poll requested (SIGUSR2)');
    void running.discovery().pollNow();
  });
  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal }, 'shutting down');
      running.close().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

function logConfig(logger: Logger, config: Config, msg: string): void {
  logger.info(
    {
      file: config.file,
      zones: config.zones.map((z) => z.name),
      records: config.zones.reduce((n, z) => n + z.records.length, 0),
      upstream: config.upstream.servers.map((s) => `${s.host}:${s.port}`),
      source: config.ec2.inventory ?? `ec2 api${config.ec2.endpoint ? ` at ${config.ec2.endpoint}` : ''}`,
    },
    msg,
  );
}

/** Set by the bundler (scripts/build.mjs); absent when running from source. */
declare const __EIPDNS_VERSION__: string | undefined;

function version(): string {
  // The image has the bundle but no package.json.
  if (typeof __EIPDNS_VERSION__ === 'string') return __EIPDNS_VERSION__;
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
