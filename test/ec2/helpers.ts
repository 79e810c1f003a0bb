// Shared fixtures for the discovery tests: a Config around a list of records,
// a real SDK client pointed at the fake, and a logger whose lines can be read.

import type { EC2Client } from '@aws-sdk/client-ec2';
import { pino } from 'pino';
import { DEFAULT_CACHE, DEFAULT_SOA } from '../../src/config/load.js';
import type { Config, RecordSource } from '../../src/config/types.js';
import { createEc2Client } from '../../src/ec2/client.js';
import type { Logger } from '../../src/log.js';
import type { FakeEc2 } from './fake-ec2.js';

export const TEST_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' } as const;

export function makeConfig(
  records: ReadonlyArray<readonly [name: string, source: RecordSource]>,
  ec2: Partial<Config['ec2']> = {},
): Config {
  return {
    file: '/test/eipdns.yaml',
    listen: [{ host: '127.0.0.1', port: 0 }],
    upstream: { servers: [], timeoutMs: 1000, maxQps: 900, maxInFlight: 10_000, rewriteElasticIps: false },
    cache: DEFAULT_CACHE,
    ec2: {
      region: 'us-east-1',
      pollIntervalMs: 60_000,
      requestTimeoutMs: 2_000,
      maxStaleMs: 3_600_000,
      ...ec2,
    },
    zones: [
      {
        name: 'internal',
        ttl: 5,
        records: records.map(([name, source]) => ({ fqdn: `${name}.internal`, source })),
        soa: DEFAULT_SOA,
      },
    ],
    acl: { allow: ['127.0.0.0/8'] },
    log: { level: 'silent' },
  };
}

export function clientFor(fake: FakeEc2, options: { maxAttempts?: number; requestTimeoutMs?: number } = {}): EC2Client {
  return createEc2Client({
    region: 'us-east-1',
    endpoint: fake.url,
    credentials: TEST_CREDENTIALS,
    requestTimeoutMs: options.requestTimeoutMs ?? 2_000,
    maxAttempts: options.maxAttempts ?? 1,
  });
}

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

export function captureLogger(): { logger: Logger; lines: LogLine[]; at: (level: number) => LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(chunk: string) {
        lines.push(JSON.parse(chunk) as LogLine);
      },
    },
  );
  return { logger, lines, at: (level) => lines.filter((l) => l.level === level) };
}

/** A hand-driven clock for staleness: only `now` reads it, timers stay real. */
export function manualClock(start = 1_000_000): { now: () => number; set: (t: number) => void; advance: (ms: number) => void } {
  let t = start;
  return {
    now: () => t,
    set: (v) => {
      t = v;
    },
    advance: (ms) => {
      t += ms;
    },
  };
}
