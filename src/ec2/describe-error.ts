// Turns whatever an EC2 call threw into a loggable summary. Free of the SDK's
// runtime code on purpose: discovery needs it before (and without) ever
// loading the SDK, which configs that use an inventory file never do.

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
