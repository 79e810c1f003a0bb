// The cache's memory: a Map from key to entry, bounded by entry count AND by
// accounted bytes, evicting with CLOCK (second chance), an approximation of
// LRU whose hit costs one property write. An LRU on a Map would re-insert the
// key on every hit (delete + set: two hash operations and an allocation), on
// the path that has to cost what a private-zone answer costs.
//
// Entries sit in a ring of slots; a hit sets the entry's reference bit; to make
// room the hand sweeps the ring, clearing set bits and evicting the first entry
// whose bit is clear. A new entry starts with its bit clear, in the slot just
// freed behind the hand, so it has a whole revolution to be hit again while a
// flood of names seen once cycles through without pushing out the popular ones.
//
// The store knows nothing of time: expired entries are dropped by the cache
// layer when it finds them, and, never hit again, are the first the hand takes.
// It is kept by the server across reloads (and resized), with its counters.

import type { Entry } from './entry.js';
import { CacheCounters } from './stats.js';

/**
 * Bytes an entry costs beyond its reply bytes and key characters: the Entry
 * object, its TTL-offset array, the reply's latin1 string header (replies are
 * held as strings, not Buffers: entry.ts), the key string's header, the Map's
 * and the ring's share. Measured by
 * bench/cache-memory.ts (heap + external per entry after GC, 100k entries,
 * Node 20, replies held as latin1 strings): 410–500 bytes for answers of
 * 1 to 60 records.
 */
export const ENTRY_OVERHEAD = 500;
/** Per record: one slot of the TTL-offset array. */
const PER_RECORD = 8;
/**
 * No single answer may take more than this share of max_bytes: one 64 KiB TCP
 * answer should not flush a small cache.
 */
const MAX_SHARE = 8;

export function entryCost(key: string, bytes: number, records: number): number {
  return ENTRY_OVERHEAD + key.length + bytes + PER_RECORD * records;
}

export interface StoreLimits {
  readonly maxEntries: number;
  readonly maxBytes: number;
}

export class CacheStore {
  readonly counters = new CacheCounters();
  private readonly map = new Map<string, Entry>();
  /** The ring; undefined marks a free slot (listed in `free`). */
  private slots: Array<Entry | undefined> = [];
  private free: number[] = [];
  private hand = 0;
  private used = 0;
  private maxEntries: number;
  private maxBytes: number;

  constructor(limits: StoreLimits) {
    this.maxEntries = checkLimit('maxEntries', limits.maxEntries);
    this.maxBytes = checkLimit('maxBytes', limits.maxBytes);
  }

  get size(): number {
    return this.map.size;
  }

  get bytes(): number {
    return this.used;
  }

  get limits(): StoreLimits {
    return { maxEntries: this.maxEntries, maxBytes: this.maxBytes };
  }

  /** The entry for `key`, marked as used. */
  get(key: string): Entry | undefined {
    const e = this.map.get(key);
    if (e !== undefined) e.ref = true;
    return e;
  }

  /** The entry for `key`, not marked (for the cache's own bookkeeping). */
  peek(key: string): Entry | undefined {
    return this.map.get(key);
  }

  /**
   * Stores `e`, replacing any entry with its key, evicting others until both
   * bounds hold with it in. False (and nothing changed) when it alone would
   * take more than its share of max_bytes.
   */
  set(e: Entry): boolean {
    if (e.cost > this.maxBytes / MAX_SHARE) return false;
    const old = this.map.get(e.key);
    if (old !== undefined) this.unlink(old);
    while (this.map.size >= this.maxEntries || this.used + e.cost > this.maxBytes) this.evictOne();
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.slots.length;
      this.slots.push(e);
    } else {
      this.slots[slot] = e;
    }
    e.slot = slot;
    // A refreshed answer keeps the standing its predecessor had earned.
    e.ref = old !== undefined && old.ref;
    this.map.set(e.key, e);
    this.used += e.cost;
    this.counters.insertions++;
    return true;
  }

  /** Removes `e` if it is still the entry stored under its key. */
  delete(e: Entry): void {
    if (this.map.get(e.key) === e) this.unlink(e);
  }

  /** New bounds (a reload): evicts down to them at once and compacts the ring. */
  resize(limits: StoreLimits): void {
    this.maxEntries = checkLimit('maxEntries', limits.maxEntries);
    this.maxBytes = checkLimit('maxBytes', limits.maxBytes);
    while (this.map.size > this.maxEntries || this.used > this.maxBytes) this.evictOne();
    for (const e of this.map.values()) {
      if (e.cost > this.maxBytes / MAX_SHARE) this.unlink(e);
    }
    this.compact();
  }

  clear(): void {
    for (const e of this.map.values()) e.slot = -1;
    this.map.clear();
    this.slots = [];
    this.free = [];
    this.hand = 0;
    this.used = 0;
  }

  private evictOne(): void {
    // Terminates: called only while the map holds an entry (size >= max >= 1,
    // or used > 0), and a full revolution clears every bit it passes.
    const slots = this.slots;
    for (;;) {
      if (this.hand >= slots.length) this.hand = 0;
      const e = slots[this.hand++];
      if (e === undefined) continue;
      if (e.ref) {
        e.ref = false;
        continue;
      }
      this.unlink(e);
      this.counters.evictions++;
      return;
    }
  }

  private unlink(e: Entry): void {
    this.map.delete(e.key);
    this.slots[e.slot] = undefined;
    this.free.push(e.slot);
    e.slot = -1;
    this.used -= e.cost;
  }

  /** Drops free slots after a shrink, so the hand never sweeps a mostly empty ring. */
  private compact(): void {
    if (this.free.length === 0) return;
    const live = [...this.map.values()];
    this.slots = live;
    live.forEach((e, i) => (e.slot = i));
    this.free = [];
    this.hand = 0;
  }
}

function checkLimit(name: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`cache ${name} must be a positive integer, got ${String(n)}`);
  return n;
}
