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

// Kept here for the callers that already hold the SDK (claim, tests); discovery
// imports it from describe-error.ts so that it does not load the SDK.
export { describeError, type DescribedError } from './describe-error.js';
