import { describe, expect, it } from 'vitest';
import { Readiness } from '../../src/admin/readiness.js';

describe('Readiness', () => {
  it('waits for every expected event and every check, then stays ready until stopped', () => {
    const r = new Readiness();
    r.expect('udp', 'DNS listener 127.0.0.1:53 not bound yet');
    let zoneWaiting = true;
    r.addCheck(() => (zoneWaiting ? ['zone internal: waiting for the first EC2 snapshot'] : []));
    expect(r.state()).toEqual({
      ready: false,
      waiting: ['DNS listener 127.0.0.1:53 not bound yet', 'zone internal: waiting for the first EC2 snapshot'],
    });
    r.done('udp');
    expect(r.state()).toEqual({ ready: false, waiting: ['zone internal: waiting for the first EC2 snapshot'] });
    zoneWaiting = false;
    expect(r.state()).toEqual({ ready: true, waiting: [] });
    // Latched: a check failing later (EC2 trouble) does not make it unready.
    zoneWaiting = true;
    expect(r.state().ready).toBe(true);
    r.stop();
    expect(r.state()).toEqual({ ready: false, waiting: ['shutting down'] });
    expect(r.stopped).toBe(true);
  });

  it('is unready once stopped even before it was ever ready', () => {
    const r = new Readiness();
    r.expect('x', 'x');
    r.stop('shutting down (SIGTERM)');
    r.done('x');
    expect(r.state()).toEqual({ ready: false, waiting: ['shutting down (SIGTERM)'] });
  });
});
