// Typed, position-aware access to a parsed YAML document. Every helper either
// returns a value or records an issue against the node it looked at and
// returns undefined, so one pass over a config reports everything wrong with
// it instead of stopping at the first problem.

import { isAlias, isMap, isScalar, isSeq, Scalar, type Document, type LineCounter, type Node } from 'yaml';
import { suggestKey } from './suggest.js';

/** An issue before offsets are turned into line:column. */
export interface RawIssue {
  readonly offset: number;
  readonly path: string;
  readonly message: string;
}

/** A node together with where it sits in the config, for messages. */
export interface Value {
  readonly node: Node;
  readonly path: string;
  /** Where this value is used; differs from node.range for aliases. */
  readonly offset: number;
}

export class Reader {
  readonly issues: RawIssue[] = [];

  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** 1-based line of a source offset, for messages that point elsewhere ("first defined at line 3"). */
  lineOf(offset: number): number {
    return this.lines.linePos(offset).line;
  }

  report(at: Value | number, message: string, path?: string): void {
    const offset = typeof at === 'number' ? at : at.offset;
    this.issues.push({ offset, path: path ?? (typeof at === 'number' ? '' : at.path), message });
  }

  /** Wraps a raw child node, following aliases to what they name. */
  wrap(node: unknown, path: string, fallbackOffset: number): Value {
    const offset = nodeOffset(node) ?? fallbackOffset;
    let target = node;
    if (isAlias(node)) target = node.resolve(this.doc);
    if (!isMap(target) && !isSeq(target) && !isScalar(target)) {
      // "? key" with no value, or an alias to nothing: treat as an empty value.
      const empty = new Scalar(null);
      empty.range = [offset, offset, offset];
      target = empty;
    }
    return { node: target as Node, path, offset };
  }

  root(): Value {
    return this.wrap(this.doc.contents, '', 0);
  }
}

function nodeOffset(node: unknown): number | undefined {
  if (node && typeof node === 'object' && 'range' in node) {
    const range = (node as { range?: [number, number, number] | null }).range;
    if (range) return range[0];
  }
  return undefined;
}

// ---- paths -----------------------------------------------------------------

export function childPath(path: string, key: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${JSON.stringify(key)}]`;
}

export function indexPath(path: string, index: number): string {
  return `${path}[${index}]`;
}

// ---- type descriptions ----------------------------------------------------

export function describe(node: Node): string {
  if (isMap(node)) return 'a map';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null || v === undefined) return 'an empty value';
    if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
    if (typeof v === 'number' || typeof v === 'bigint') return `the number ${String(v)}`;
    if (typeof v === 'boolean') return `the boolean ${String(v)}`;
  }
  return 'an unsupported value';
}

function mismatch(r: Reader, v: Value, expected: string): undefined {
  r.report(v, `expected ${expected}, got ${describe(v.node)}`);
  return undefined;
}

export function isEmpty(v: Value): boolean {
  return isScalar(v.node) && (v.node.value === null || v.node.value === undefined);
}

// ---- maps ------------------------------------------------------------------

export interface Entry {
  readonly key: string;
  readonly keyOffset: number;
  readonly value: Value;
}

/**
 * The entries of a map in document order. Duplicate keys are reported here
 * (not by the YAML parser) so the message can carry the key's path.
 * `caseInsensitive` is for keys that are DNS names, where "DB" and "db" clash.
 */
export function entriesOf(
  r: Reader,
  v: Value,
  opts: { expected: string; nullIsEmpty?: boolean; caseInsensitive?: boolean },
): Entry[] | undefined {
  if (opts.nullIsEmpty && isEmpty(v)) return [];
  if (!isMap(v.node)) return mismatch(r, v, opts.expected);

  const seen = new Map<string, number>();
  const entries: Entry[] = [];
  for (const pair of v.node.items) {
    const keyOffset = nodeOffset(pair.key) ?? v.offset;
    const key = keyText(pair.key);
    if (key === undefined) {
      r.report(keyOffset, 'keys must be plain strings', v.path);
      continue;
    }
    const path = childPath(v.path, key);
    const norm = opts.caseInsensitive ? key.toLowerCase() : key;
    const first = seen.get(norm);
    if (first !== undefined) {
      r.report(keyOffset, `duplicate key ${JSON.stringify(key)} (first defined on line ${r.lineOf(first)})`, path);
      continue;
    }
    seen.set(norm, keyOffset);
    entries.push({ key, keyOffset, value: r.wrap(pair.value, path, keyOffset) });
  }
  return entries;
}

/**
 * Scalar keys as the user wrote them: `1: x` is the key "1", not the number.
 * Anything else (null, a collection) is not a usable key.
 */
function keyText(key: unknown): string | undefined {
  if (!isScalar(key)) return undefined;
  if (typeof key.value === 'string') return key.value;
  if (typeof key.value === 'number' || typeof key.value === 'boolean') return key.source ?? String(key.value);
  return undefined;
}

/** A map with a fixed set of keys. */
export class Fields {
  private readonly byKey: Map<string, Entry>;

  /**
   * `misspelled` holds the keys that unknown keys were taken to be typos of,
   * and `unknown` counts all unknown keys: one typo should produce one
   * message, not also "missing" for the key it was meant to be.
   */
  constructor(
    private readonly r: Reader,
    readonly self: Value,
    entries: readonly Entry[],
    readonly unknown = 0,
    private readonly misspelled: ReadonlySet<string> = new Set(),
  ) {
    this.byKey = new Map(entries.map((e) => [e.key, e]));
  }

  get(key: string): Value | undefined {
    return this.byKey.get(key)?.value;
  }

  /** Reports the absence at the map itself, since the key has no position. */
  require(key: string): Value | undefined {
    const v = this.get(key);
    if (v === undefined && !this.misspelled.has(key)) this.r.report(this.self.offset, 'required key is missing', childPath(this.self.path, key));
    return v;
  }

  /** The keys among `keys` that are present, in document order. */
  present(keys: readonly string[]): Entry[] {
    return [...this.byKey.values()].filter((e) => keys.includes(e.key));
  }
}

export function expectFields(
  r: Reader,
  v: Value,
  known: readonly string[],
  opts: { expected?: string; nullIsEmpty?: boolean } = {},
): Fields | undefined {
  const entries = entriesOf(r, v, { expected: opts.expected ?? 'a map', nullIsEmpty: opts.nullIsEmpty });
  if (entries === undefined) return undefined;
  const good: Entry[] = [];
  const misspelled = new Set<string>();
  for (const e of entries) {
    if (known.includes(e.key)) {
      good.push(e);
      continue;
    }
    const path = childPath(v.path, e.key);
    if (e.key === '<<') {
      r.report(e.keyOffset, 'merge keys ("<<") are not supported; write the keys out', path);
      continue;
    }
    const hint = suggestKey(e.key, known);
    if (hint) misspelled.add(hint);
    const allowed = `expected one of ${known.map((k) => JSON.stringify(k)).join(', ')}`;
    r.report(e.keyOffset, hint ? `unknown key; did you mean ${JSON.stringify(hint)}?` : `unknown key; ${allowed}`, path);
  }
  return new Fields(r, v, good, entries.length - good.length, misspelled);
}

/**
 * For maps where exactly one of several keys must be given (a record's
 * source, an Elastic IP's selector). Returns the chosen entry or reports.
 */
export function exactlyOne(r: Reader, fields: Fields, choices: readonly string[], what: string): Entry | undefined {
  const given = fields.present(choices);
  const list = choices.map((c) => JSON.stringify(c)).join(', ');
  if (given.length === 0) {
    // An unknown key here was most likely meant as one of the choices and
    // has been reported already, with the choices or a suggestion.
    if (fields.unknown === 0) r.report(fields.self, `no ${what}: expected exactly one of ${list}`);
    return undefined;
  }
  if (given.length > 1) {
    const names = given.map((e) => JSON.stringify(e.key)).join(' and ');
    r.report(given[1]!.keyOffset, `${names} both given: expected exactly one ${what}`, fields.self.path);
    return undefined;
  }
  return given[0];
}

// ---- lists -----------------------------------------------------------------

export function expectList(r: Reader, v: Value, opts: { of: string; min?: number }): Value[] | undefined {
  if (!isSeq(v.node)) return mismatch(r, v, `a list of ${opts.of}`);
  const items = v.node.items.map((item, i) => r.wrap(item, indexPath(v.path, i), v.offset));
  if (items.length < (opts.min ?? 0)) {
    r.report(v, opts.min === 1 ? `must not be empty` : `needs at least ${opts.min} entries`);
    return undefined;
  }
  return items;
}

// ---- scalars ---------------------------------------------------------------

export function expectString(r: Reader, v: Value, what = 'a string'): string | undefined {
  if (isScalar(v.node) && typeof v.node.value === 'string') return v.node.value;
  return mismatch(r, v, what);
}

export function expectInt(r: Reader, v: Value, range: { min: number; max: number }): number | undefined {
  const n = isScalar(v.node) ? v.node.value : undefined;
  if (typeof n !== 'number' || !Number.isInteger(n)) return mismatch(r, v, 'an integer');
  if (n < range.min || n > range.max) {
    r.report(v, `${n} is out of range: expected ${range.min}..${range.max}`);
    return undefined;
  }
  return n;
}

/**
 * YAML 1.2 booleans only (true/false): `yes`, `on` and friends are strings
 * in the core schema, so they are refused rather than guessed at.
 */
export function expectBool(r: Reader, v: Value): boolean | undefined {
  if (isScalar(v.node) && typeof v.node.value === 'boolean') return v.node.value;
  return mismatch(r, v, 'true or false');
}

export function expectEnum<T extends string>(r: Reader, v: Value, options: readonly T[]): T | undefined {
  const s = expectString(r, v, `one of ${options.join('|')}`);
  if (s === undefined) return undefined;
  if ((options as readonly string[]).includes(s)) return s as T;
  const hint = suggestKey(s, options);
  r.report(v, `${JSON.stringify(s)} is not one of ${options.join('|')}${hint ? `; did you mean ${JSON.stringify(hint)}?` : ''}`);
  return undefined;
}

/**
 * A string that tag values and similar free text can hold. A plain YAML
 * scalar that happens to look like a number or boolean (`Tier: 1`,
 * `Public: yes`) is taken as the text written, not re-rendered from the
 * parsed value, so `1.0` stays "1.0" and matches the tag exactly as typed.
 */
export function expectText(r: Reader, v: Value, what: string): string | undefined {
  if (isScalar(v.node)) {
    const value = v.node.value;
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return v.node.source ?? String(value);
  }
  return mismatch(r, v, what);
}
