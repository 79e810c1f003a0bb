// The AXFR stream cache: one encoding per current version, and nothing kept
// for a version nobody holds any more (a zone removed by a reload, a
// closed room), which a module-wide map by apex used to keep for good.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { axfrStream, ixfrStream } from '../../src/transfer/outgoing.js';
import { TYPE } from '../../src/wire/codes.js';
import { textToWire } from '../../src/wire/name.js';
import { encodeSoa, ZoneBuilder, type ZoneData } from '../../src/zone/data.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function zone(apex: string, serial: number): ZoneData {
  const b = new ZoneBuilder(apex);
  b.add(apex, TYPE.SOA, 60, encodeSoa({ mname: textToWire(`ns.${apex}`), rname: textToWire(`h.${apex}`), serial, refresh: 60, retry: 10, expire: 600, minimum: 5 }));
  for (let i = 0; i < 50; i++) b.add(`n${i}.${apex}`, TYPE.A, 60, Buffer.from([10, 0, 0, i]));
  return b.build();
}

describe('the AXFR stream cache', () => {
  it('encodes a version once, and IXFR-as-full reuses it', () => {
    const data = zone('cached.test', 1);
    const stream = axfrStream(data);
    expect(axfrStream(data)).toBe(stream);
    expect(ixfrStream(data, undefined)).toBe(stream);
    expect(axfrStream(zone('cached.test', 2))).not.toBe(stream);
  });

  it('keeps nothing alive for a version nobody holds', async () => {
    let data: ZoneData | undefined = zone('removed.test', 1);
    const ref = new WeakRef(data);
    axfrStream(data);
    data = undefined;
    // A WeakRef's target lives until the current job ends.
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(ref.deref()).toBeUndefined();
  });
});
