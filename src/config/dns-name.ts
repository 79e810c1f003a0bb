// DNS name syntax for zone names and record labels. Underscore is allowed
// because service-style labels ("_ldap") are real, if rare, in private zones.

import { canonicalName } from '../wire/name.js';
import type { Parsed } from './net.js';

const LABEL = /^[a-z0-9_-]{1,63}$/;
const MAX_NAME = 253;

function checkLabels(name: string, original: string): string | undefined {
  for (const label of name.split('.')) {
    if (label === '') return `"${original}" has an empty label (two dots in a row, or a leading dot)`;
    if (label === '*') return `"${original}": wildcards are not supported`;
    if (label.length > 63) return `"${original}": label "${label.slice(0, 20)}…" is longer than 63 characters`;
    if (!LABEL.test(label)) return `"${original}": label "${label}" may only contain a-z, 0-9, "-" and "_"`;
  }
  if (name.length > MAX_NAME) return `"${original}" is longer than ${MAX_NAME} characters`;
  // The labels above were lower-cased, and toLowerCase maps a few non-ASCII
  // letters to ASCII ones (the Kelvin sign to "k"): check the name as written.
  const foreign = /[^\x00-\x7f]/u.exec(original);
  if (foreign) return `"${original}": "${foreign[0]}" is not allowed; names may only contain a-z, 0-9, "-" and "_"`;
  return undefined;
}

/** A zone name: lower-cased, one trailing dot dropped. */
export function parseZoneName(text: string): Parsed<string> {
  const name = canonicalName(text);
  if (name === '') return { ok: false, error: 'the root zone cannot be served: eipdns forwards everything outside its zones' };
  const error = checkLabels(name, text);
  return error ? { ok: false, error } : { ok: true, value: name };
}

/** A record key, relative to its zone: "db" or "a.b". Returns the lower-cased label(s). */
export function parseRecordLabel(text: string): Parsed<string> {
  const label = text.toLowerCase();
  if (label === '@') {
    return { ok: false, error: 'the zone apex cannot have records (it answers SOA and NS); use a name below it' };
  }
  if (label.endsWith('.')) {
    return { ok: false, error: `"${text}": record names are relative to the zone; drop the trailing dot` };
  }
  const error = checkLabels(label, text);
  return error ? { ok: false, error } : { ok: true, value: label };
}

/** True when `name` is `zone` itself or lies below it. */
export function isAtOrBelow(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}

/**
 * A TSIG key name (RFC 8945: a domain name): lower-cased, one trailing dot
 * dropped, as BIND and Knot compare them.
 */
export function parseKeyName(text: string): Parsed<string> {
  const name = canonicalName(text);
  if (name === '') return { ok: false, error: 'expected a key name like "transfer-key", got an empty name' };
  const error = checkLabels(name, text);
  return error ? { ok: false, error } : { ok: true, value: name };
}
