import { describe, expect, it } from 'vitest';
import { Entry } from '../../src/cache/entry.js';
import { CacheStore, ENTRY_OVERHEAD, entryCost } from '../../src/cache/store.js';

const WIRE = 'x'.repeat(64);

function entry(key: string, size = 64): Entry {
  return new Entry(key, 'positive', WIRE, [], 60, 0, entryCost(key, size, 1));
}

/** A deterministic PRNG (xorshift32), so a failure can be replayed. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

describe('CacheStore', () => {
  it('never holds more than max_entries or max_bytes, at any point of a million random names', () => {
    const maxEntries = 2_000;
    const maxBytes = 1_000_000;
    const store = new CacheStore({ maxEntries, maxBytes });
    const rand = prng(0x5eed);
    let worstEntries = 0;
    let worstBytes = 0;
    for (let i = 0; i < 1_000_000; i++) {
      const r = rand();
      // Sizes from 12 to ~4 KB so the byte bound, not only the count, is hit.
      store.set(entry(`${r.toString(36)}.${i}.flood.example`, 12 + (r % 4096)));
      if (store.size > worstEntries) worstEntries = store.size;
      if (store.bytes > worstBytes) worstBytes = store.bytes;
      // Some hits, so reference bits are set and cleared all along.
      if ((r & 7) === 0) store.get(`${(r >>> 3).toString(36)}`);
    }
    expect(worstEntries).toBeLessThanOrEqual(maxEntries);
    expect(worstBytes).toBeLessThanOrEqual(maxBytes);
    expect(store.counters.insertions).toBe(1_000_000);
    expect(store.counters.evictions).toBe(1_000_000 - store.size);
    // Both bounds did bite: it is full by one measure or the other.
    expect(store.size === maxEntries || store.bytes > maxBytes - 5_000).toBe(true);
  });

  it('gives entries that are hit a second chance: a flood of names seen once does not push them out', () => {
    const store = new CacheStore({ maxEntries: 100, maxBytes: 10_000_000 });
    const hot = Array.from({ length: 20 }, (_, i) => `hot${i}.example`);
    for (const k of hot) store.set(entry(k));
    for (let i = 0; i < 10_000; i++) {
      store.set(entry(`cold${i}.example`));
      if (i % 50 === 0) for (const k of hot) store.get(k);
    }
    expect(hot.filter((k) => store.peek(k) === undefined)).toEqual([]);
    expect(store.size).toBe(100);
  });

  it('evicts in CLOCK order: an entry never hit goes first, a hit one after its bit is cleared', () => {
    const store = new CacheStore({ maxEntries: 3, maxBytes: 10_000_000 });
    store.set(entry('a'));
    store.set(entry('b'));
    store.set(entry('c'));
    store.get('a');
    store.set(entry('d')); // hand: a (clear its bit) → b evicted
    expect([...['a', 'b', 'c', 'd']].filter((k) => store.peek(k) !== undefined)).toEqual(['a', 'c', 'd']);
    store.set(entry('e')); // hand at c: evicted
    expect(store.peek('c')).toBeUndefined();
    expect(store.counters.evictions).toBe(2);
  });

  it('replaces an entry with the same key in place, accounting the new size', () => {
    const store = new CacheStore({ maxEntries: 10, maxBytes: 100_000 });
    store.set(entry('k', 100));
    const before = store.bytes;
    const next = entry('k', 300);
    store.set(next);
    expect(store.size).toBe(1);
    expect(store.bytes).toBe(before + 200);
    expect(store.peek('k')).toBe(next);
    expect(store.counters.evictions).toBe(0);
  });

  it('refuses an entry larger than an eighth of max_bytes, and keeps what it had', () => {
    const store = new CacheStore({ maxEntries: 10, maxBytes: 80_000 });
    const small = entry('k', 100);
    store.set(small);
    expect(store.set(entry('k', 10_000))).toBe(false);
    expect(store.peek('k')).toBe(small);
    expect(entryCost('k', 100, 1)).toBe(ENTRY_OVERHEAD + 1 + 100 + 8);
  });

  it('deletes only the entry it is given, not a newer one under the same key', () => {
    const store = new CacheStore({ maxEntries: 10, maxBytes: 100_000 });
    const old = entry('k');
    store.set(old);
    const fresh = entry('k');
    store.set(fresh);
    store.delete(old);
    expect(store.peek('k')).toBe(fresh);
    store.delete(fresh);
    expect(store.size).toBe(0);
    expect(store.bytes).toBe(0);
  });

  it('shrinks to new bounds at once on resize, and empties on clear', () => {
    const store = new CacheStore({ maxEntries: 1000, maxBytes: 10_000_000 });
    for (let i = 0; i < 1000; i++) store.set(entry(`n${i}`));
    store.resize({ maxEntries: 100, maxBytes: 10_000_000 });
    expect(store.size).toBe(100);
    store.resize({ maxEntries: 100, maxBytes: 20 * entryCost('n999', 64, 1) });
    expect(store.size).toBeLessThanOrEqual(20);
    expect(store.bytes).toBeLessThanOrEqual(20 * entryCost('n999', 64, 1));
    // Still works after compaction.
    for (let i = 0; i < 500; i++) store.set(entry(`m${i}`));
    expect(store.size).toBeLessThanOrEqual(20);
    store.clear();
    expect([store.size, store.bytes]).toEqual([0, 0]);
    expect(() => new CacheStore({ maxEntries: 0, maxBytes: 1 })).toThrow(RangeError);
  });
});
