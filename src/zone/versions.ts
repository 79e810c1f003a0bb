// A zone's versions: the one secondaries may take now, its serial, and a
// bounded history of what changed between recent versions, from which IXFR
// (RFC 1995) is answered. Both kinds of zone keep one: a primary zone's
// versions come from discovery (offer(), which also picks the serial), a
// secondary zone's from transfers (accept()).

import { diffZones, sameContent, withSoa, type Rr, type ZoneData } from './data.js';
import type { PrimaryData } from './from-snapshot.js';
import { primarySoa } from './from-snapshot.js';
import { nextSerial, serialGt } from './serial.js';
import type { ZoneConfig } from '../config/types.js';

/** One step of history: the records that went and came from one version to the next. */
export interface Change {
  readonly from: ZoneData;
  readonly to: ZoneData;
  readonly removed: readonly Rr[];
  readonly added: readonly Rr[];
}

export interface HistoryLimits {
  /** Versions kept. */
  readonly changes: number;
  /** Records (removed + added) kept over all kept changes. */
  readonly records: number;
}

/** Records below which a diff is sent however it compares with the zone. */
const SMALL_ZONE = 32;

export const DEFAULT_HISTORY: HistoryLimits = { changes: 64, records: 200_000 };

/** What a primary zone serves now. */
export interface Offered {
  /** The data to answer from: the current version, or (while withheld) the partial data under the last vouched serial. */
  readonly serving: ZoneData;
  readonly withheld: ReadonlySet<string>;
  /** True when a new transferable version was created (secondaries should be told). */
  readonly changed: boolean;
}

export class ZoneVersions {
  private history: Change[] = [];
  private historyRecords = 0;
  private latest: ZoneData | undefined;

  constructor(private readonly limits: HistoryLimits = DEFAULT_HISTORY) {}

  /** The version secondaries may take (undefined before the first one). */
  get current(): ZoneData | undefined {
    return this.latest;
  }

  /**
   * A primary zone's data from a new snapshot. A new version (and serial) only
   * when the records differ from the current version: stale/expired flips, a
   * reload with the same records and polls that change nothing keep the
   * serial. While names are withheld nothing is versioned (transfers are
   * refused then); the data is served under the last vouched serial.
   */
  offer(zone: ZoneConfig, candidate: PrimaryData, nowMs: number): Offered {
    const current = this.latest;
    if (candidate.withheld.size > 0) {
      const serial = current?.serial ?? nextSerial(undefined, nowMs);
      return { serving: withSoa(candidate.data, primarySoa(zone, serial)), withheld: candidate.withheld, changed: false };
    }
    if (current !== undefined && sameContent(current, candidate.data)) {
      return { serving: current, withheld: candidate.withheld, changed: false };
    }
    const next = withSoa(candidate.data, primarySoa(zone, nextSerial(current?.serial, nowMs)));
    this.push(next);
    return { serving: next, withheld: candidate.withheld, changed: true };
  }

  /**
   * Makes `next` current (a secondary's transfer, or a primary's new version).
   * `diff` is the change when the caller knows it (an applied IXFR);
   * otherwise it is computed. Returns false, changing nothing, unless `next`
   * has a greater serial than the current version.
   */
  push(next: ZoneData, diff?: { removed: readonly Rr[]; added: readonly Rr[] }): boolean {
    const from = this.latest;
    if (from !== undefined && !serialGt(next.serial, from.serial)) return false;
    this.latest = next;
    if (from === undefined) return true;
    const change = diff ?? diffZones(from, next);
    this.history.push({ from, to: next, removed: change.removed, added: change.added });
    this.historyRecords += change.removed.length + change.added.length;
    while (this.history.length > this.limits.changes || (this.historyRecords > this.limits.records && this.history.length > 0)) {
      const old = this.history.shift()!;
      this.historyRecords -= old.removed.length + old.added.length;
    }
    return true;
  }

  /**
   * An independent copy (the history list copied, its entries shared: they
   * are immutable). A reload offers the new config's data to a copy, so a
   * reload that fails later leaves this one as it was.
   */
  copy(): ZoneVersions {
    const out = new ZoneVersions(this.limits);
    out.latest = this.latest;
    out.history = [...this.history];
    out.historyRecords = this.historyRecords;
    return out;
  }

  /** Replaces the current version without history: a secondary zone rebuilt by a reload (new primaries or key) seeded with the copy it had (SecondaryZone.seed). */
  reset(next: ZoneData | undefined): void {
    this.latest = next;
    this.history = [];
    this.historyRecords = 0;
  }

  /**
   * The changes from `serial` to the current version, oldest first; [] when
   * `serial` is current; undefined when the history does not reach back that
   * far, or when the changes hold more records than the zone itself (a full
   * transfer is smaller then; BIND's max-ixfr-ratio is 100 % too). Small
   * zones get their changes anyway: a few records either way.
   */
  changesSince(serial: number): Change[] | undefined {
    const current = this.latest;
    if (current === undefined) return undefined;
    if (current.serial === serial >>> 0) return [];
    const start = this.history.findIndex((c) => c.from.serial === serial >>> 0);
    if (start < 0) return undefined;
    const changes = this.history.slice(start);
    const records = changes.reduce((n, c) => n + c.removed.length + c.added.length + 2, 0);
    return records > current.size + SMALL_ZONE ? undefined : changes;
  }
}

