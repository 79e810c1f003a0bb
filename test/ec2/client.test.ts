import { DescribeAddressesCommand } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEc2Client, describeError } from '../../src/ec2/client.js';
import { startFakeEc2, type FakeEc2 } from './fake-ec2.js';
import { TEST_CREDENTIALS } from './helpers.js';

let fake: FakeEc2;

beforeEach(async () => {
  fake = await startFakeEc2();
});

afterEach(async () => {
  await fake.close();
});

describe('createEc2Client', () => {
  it('bounds every attempt even without an abort signal', async () => {
    const client = createEc2Client({ region: 'us-east-1', endpoint: fake.url, credentials: TEST_CREDENTIALS, requestTimeoutMs: 200 });
    try {
      fake.inject({ fault: 'hang' });
      // The fake never answers: only the handler's timeout can settle this
      // (otherwise the test's own timeout fails it).
      const err: unknown = await client.send(new DescribeAddressesCommand({})).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(describeError(err).code).toBe('TimeoutError');
      // Two attempts of ~100 ms each: the default is a small retry budget.
      expect(fake.calls.map((c) => c.attempt)).toEqual(['attempt=1; max=2', 'attempt=2; max=2']);
    } finally {
      client.destroy();
    }
  });
});

describe('describeError', () => {
  it('summarises EC2 service errors with code, status and request id', async () => {
    const client = createEc2Client({ region: 'us-east-1', endpoint: fake.url, credentials: TEST_CREDENTIALS, requestTimeoutMs: 2_000, maxAttempts: 1 });
    try {
      fake.inject({ fault: 'throttle' });
      const err: unknown = await client.send(new DescribeAddressesCommand({})).catch((e: unknown) => e);
      expect(describeError(err)).toEqual({
        code: 'RequestLimitExceeded',
        message: 'Request limit exceeded.',
        status: 503,
        requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      });
    } finally {
      client.destroy();
    }
  });

  it('handles socket errors and non-errors', () => {
    expect(describeError(Object.assign(new Error('socket hang up'), { name: 'TimeoutError', code: 'ECONNRESET' }))).toEqual({
      code: 'ECONNRESET',
      message: 'socket hang up',
    });
    expect(describeError('boom')).toEqual({ code: 'Error', message: 'boom' });
  });
});
