// POST /refresh: polls EC2 now, as SIGUSR2 does, and answers with how that
// poll went and discovery's state after it. pollNow() queues behind a poll in
// flight, so the answer never reports data older than the request.

import type { Discovery } from '../ec2/discovery.js';
import type { RefreshResult } from './http.js';

export async function refresh(discovery: Discovery): Promise<RefreshResult> {
  await discovery.pollNow();
  const v = discovery.view();
  const ok = v.consecutiveFailures === 0;
  return {
    result: ok ? 'ok' : 'error',
    state: v.state,
    generation: v.snapshot.generation,
    lastSuccessAt: v.lastSuccessAt !== undefined ? new Date(v.lastSuccessAt).toISOString() : null,
    ...(ok || v.lastError === undefined ? {} : { error: v.lastError }),
  };
}
