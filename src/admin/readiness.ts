// GET /ready: may a load balancer or kubelet send queries here yet? Not until
// every DNS listener is bound and every EC2-backed zone has its first data;
// and not again from the moment shutdown begins (lame duck), so the traffic
// stops before the listeners do.
//
// Once ready it stays ready until shutdown. EC2 trouble later does not flip
// it: every instance shares the same API, so a throttled account would drain
// the whole fleet at once, when the last known answers are still served. The
// discovery state is in /metrics and /status for alerting instead. Upstream
// health never moves it either (CoreDNS's maintainers rejected that for the
// same reason: a network blip would mark every instance unready).

export interface ReadinessState {
  readonly ready: boolean;
  /** What is not ready, one line each (the 503 body). Empty when ready. */
  readonly waiting: readonly string[];
}

export class Readiness {
  /** key → what is being waited for. */
  private readonly pending = new Map<string, string>();
  private readonly checks: Array<() => readonly string[]> = [];
  private latched = false;
  private stopping: string | undefined;

  /** Something that must happen before ready; `done(key)` clears it. */
  expect(key: string, what: string): void {
    if (!this.latched) this.pending.set(key, what);
  }

  done(key: string): void {
    this.pending.delete(key);
  }

  /** A condition evaluated on every check until first ready: the lines it returns are what it still waits for. */
  addCheck(check: () => readonly string[]): void {
    this.checks.push(check);
  }

  /** Lame duck: not ready from now on, whatever else holds. */
  stop(reason = 'shutting down'): void {
    this.stopping ??= reason;
  }

  get stopped(): boolean {
    return this.stopping !== undefined;
  }

  state(): ReadinessState {
    if (this.stopping !== undefined) return { ready: false, waiting: [this.stopping] };
    if (this.latched) return { ready: true, waiting: [] };
    const waiting = [...this.pending.values()];
    for (const check of this.checks) waiting.push(...check());
    if (waiting.length === 0) this.latched = true;
    return { ready: waiting.length === 0, waiting };
  }
}
