// The EC2 client discovery uses. The SDK's defaults would let one hung
// request stall discovery forever (no request timeout at all), so every
// attempt is bounded by the HTTP handler and every call by an abort signal.

import { EC2Client, type EC2ClientConfig } from '@aws-sdk/client-ec2';
import { NodeHttpHandler } from '@smithy/node-http-handler';

export type Ec2Credentials = NonNullable<EC2ClientConfig['credentials']>;

export interface Ec2ClientOptions {
  /** Falls back to the SDK's default chain (AWS_REGION, profile, IMDS). */
  readonly region?: string;
  readonly endpoint?: string;
  /** Budget for one call including retries; each attempt gets a share of it. */
  readonly requestTimeoutMs: number;
  /**
   * Attempts per call (default 2). Kept small: the poller retries on its next
   * tick anyway, and standard-mode retries would otherwise drain the
   * client's retry-token pool during a long outage.
   */
  readonly maxAttempts?: number;
  /** Overrides the SDK's default credential chain (tests). */
  readonly credentials?: Ec2Credentials;
}

export function createEc2Client(options: Ec2ClientOptions): EC2Client {
  const maxAttempts = Math.max(1, options.maxAttempts ?? 2);
  // Splitting the budget lets a retry follow one hung attempt instead of the
  // whole budget going to it.
  const attemptTimeoutMs = Math.max(1, Math.ceil(options.requestTimeoutMs / maxAttempts));
  return new EC2Client({
    ...(options.region !== undefined ? { region: options.region } : {}),
    ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
    ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
    maxAttempts,
    retryMode: 'standard',
    requestHandler: new NodeHttpHandler({
      connectionTimeout: Math.min(attemptTimeoutMs, 3_000),
      requestTimeout: attemptTimeoutMs,
      // Without this a breached requestTimeout only logs a warning.
      throwOnRequestTimeout: true,
    }),
  });
}

export interface DescribedError {
  /** EC2 error code ("RequestLimitExceeded"), Node error code ("ECONNRESET") or error name. */
  readonly code: string;
  readonly message: string;
  readonly status?: number;
  readonly requestId?: string;
}

function stringProp(value: object, key: string): string | undefined {
  const v: unknown = (value as Record<string, unknown>)[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** A loggable summary of whatever a poll threw: SDK service errors, socket errors, timeouts. */
export function describeError(err: unknown): DescribedError {
  if (typeof err !== 'object' || err === null) return { code: 'Error', message: String(err) };
  const message = stringProp(err, 'message') ?? String(err);
  const name = stringProp(err, 'name');
  const metadata: unknown = (err as Record<string, unknown>).$metadata;
  const status: unknown =
    typeof metadata === 'object' && metadata !== null
      ? (metadata as Record<string, unknown>).httpStatusCode
      : undefined;
  if (typeof status === 'number') {
    // EC2 answered: the error's name is the EC2 error code.
    const requestId = stringProp(metadata as object, 'requestId');
    return {
      code: stringProp(err, 'Code') ?? name ?? 'Error',
      message,
      status,
      ...(requestId !== undefined ? { requestId } : {}),
    };
  }
  // No answer. The SDK names a reset socket "TimeoutError" (so it is retried),
  // hence the socket code wins, except ETIMEDOUT which the name says better.
  const code = stringProp(err, 'code');
  if (code !== undefined && code !== 'ETIMEDOUT') return { code, message };
  return { code: name ?? code ?? 'Error', message };
}
