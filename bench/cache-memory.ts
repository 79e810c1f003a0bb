// What the answer cache costs in memory, measured rather than guessed: fills a
// CacheStore through the same path a real upstream reply takes (classify, then
// set) with a flood of distinct names, and reports the heap, external and RSS
// growth against what the store accounts. This is where store.ts's
// ENTRY_OVERHEAD comes from, and the README's memory bound.
//
//   npx tsx --expose-gc bench/cache-memory.ts [--names N] [--records R] [--max-entries E] [--max-bytes B]
//
// --records is the number of A records per answer (1: a typical ~60-octet
// reply; 60: ~1 KB). Defaults: 100 000 names, 1 record, the default bounds.

import { parseArgs } from 'node:util';
import { classify, Entry } from '../src/cache/entry.js';
import { CacheStore, entryCost } from '../src/cache/store.js';
import { DEFAULT_CACHE } from '../src/config/load.js';

const { values } = parseArgs({
  options: {
    names: { type: 'string', default: '100000' },
    records: { type: 'string', default: '1' },
    'max-entries': { type: 'string', default: String(DEFAULT_CACHE.maxEntries) },
    'max-bytes': { type: 'string', default: String(DEFAULT_CACHE.maxBytes) },
  },
});
const names = Number(values.names);
const records = Number(values.records);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc (npx tsx --expose-gc bench/cache-memory.ts)');

// Built with as little garbage as possible, so the RSS growth is the cache's.
const answers = Buffer.alloc(records * 16);
for (let k = 0; k < records; k++) Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, k >> 8, k & 0xff]).copy(answers, k * 16);
const header = Buffer.from([0x12, 0x34, 0x81, 0x80, 0, 1, records >> 8, records & 0xff, 0, 0, 0, 1]);
const opt = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
const scratch = Buffer.alloc(12 + 256 + 4 + answers.length + opt.length);

/** The reply to `name` A, in a scratch buffer (classify copies what it keeps). */
function reply(name: string): Buffer {
  header.copy(scratch, 0);
  let at = 12;
  for (const label of name.split('.')) {
    scratch[at++] = label.length;
    at += scratch.write(label, at, 'latin1');
  }
  scratch[at++] = 0;
  scratch.writeUInt32BE(0x00010001, at);
  at += 4;
  at += answers.copy(scratch, at);
  at += opt.copy(scratch, at);
  return scratch.subarray(0, at);
}

const lifetimes = { minTtl: 0, maxTtl: 86_400, maxNegativeTtl: 3600 };
const store = new CacheStore({ maxEntries: Number(values['max-entries']), maxBytes: Number(values['max-bytes']) });
gc();
gc();
const before = process.memoryUsage();
let replyBytes = 0;
for (let i = 0; i < names; i++) {
  const name = `host${i}.zone${i % 97}.example.com`;
  const r = reply(name);
  const v = classify(r, 12 + name.length + 2 + 4, lifetimes);
  if (v.kind !== 'positive') throw new Error(`unexpected ${v.kind}`);
  const key = `1:1:0:${name}`;
  if (store.set(new Entry(key, v.kind, v.bytes.toString('latin1'), v.ttlAt, v.ttl, 0, entryCost(key, v.bytes.length, v.ttlAt.length)))) replyBytes = v.bytes.length;
}
gc();
gc();
const after = process.memoryUsage();
const mb = (n: number): string => (n / 1048576).toFixed(1);
const delta = (k: keyof NodeJS.MemoryUsage): number => after[k] - before[k];
const held = store.size;
console.log(`${names} names, ${records} record(s) per answer (${replyBytes} octets stored each)`);
console.log(`store: ${held} entries, ${mb(store.bytes)} MB accounted (bounds ${store.limits.maxEntries} / ${mb(store.limits.maxBytes)} MB), ${store.counters.evictions} evictions`);
console.log(`growth: heap ${mb(delta('heapUsed'))} MB + external ${mb(delta('external'))} MB = ${mb(delta('heapUsed') + delta('external'))} MB; RSS ${mb(delta('rss'))} MB`);
console.log(`per entry: accounted ${(store.bytes / held).toFixed(0)} B, measured ${((delta('heapUsed') + delta('external')) / held).toFixed(0)} B`);
