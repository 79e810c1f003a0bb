// Reads a TSIG secret file in the forms people already have: the one line of
// base64 a secret manager hands out, the key clause BIND's `tsig-keygen`
// prints, or the key list Knot's `keymgr -t` prints. Accepting the tools'
// output as is means the same file can be included by the peer server's own
// config, so the two sides cannot drift apart by a copy-and-paste.

import { isMap, isScalar, isSeq, parseDocument } from 'yaml';
import { canonicalName } from '../wire/name.js';
import type { Parsed } from './net.js';

export type TsigFileFormat = 'base64' | 'bind' | 'knot';

/** One key found in a file. Name and algorithm are absent for bare base64. */
export interface TsigFileKey {
  /** Lower case, no trailing dot. */
  readonly name?: string;
  /** Lower case as written ("hmac-sha256"); not checked against what eipdns supports. */
  readonly algorithm?: string;
  readonly secret: string;
}

export interface TsigFile {
  readonly format: TsigFileFormat;
  readonly keys: readonly TsigFileKey[];
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Shorter HMAC keys are guessable; tsig-keygen and keymgr make keys as long as the hash (20 to 64 bytes). */
export const MIN_SECRET_BYTES = 16;
export const FORMATS_HINT =
  'expected one line of base64, the key clause `tsig-keygen` prints (BIND) or the key list `keymgr -t` prints (Knot)';

export function parseTsigFile(text: string): Parsed<TsigFile> {
  if (text.trim() === '') return { ok: false, error: `is empty: ${FORMATS_HINT}` };
  const bind = stripBindComments(text);
  if (/(^|[\s;}])key\s+("[^"]*"|[^\s{;"]+)\s*\{/.test(bind)) return parseBind(bind);
  if (/^key\s*:/m.test(text)) return parseKnot(text);
  const line = text.trim();
  if (/\s/.test(line)) return { ok: false, error: `holds no TSIG secret: ${FORMATS_HINT}` };
  return { ok: true, value: { format: 'base64', keys: [{ secret: line }] } };
}

/** Why `secret` cannot be used, or undefined when it is a usable key. */
export function checkSecret(secret: string): string | undefined {
  if (secret === '' || !BASE64.test(secret)) return 'the secret is not valid base64';
  const bytes = Buffer.from(secret, 'base64').length;
  if (bytes < MIN_SECRET_BYTES) {
    return `the secret is ${bytes} bytes; a TSIG key must be at least ${MIN_SECRET_BYTES} (tsig-keygen and keymgr make keys as long as the hash)`;
  }
  return undefined;
}

// ---- BIND ------------------------------------------------------------------

/**
 * named.conf comments (`#`, `//`, `/* *\/`) outside quoted strings. A base64
 * secret may well contain "//", so quotes must be respected.
 */
function stripBindComments(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; ) {
    const c = text[i]!;
    if (c === '"') {
      const end = text.indexOf('"', i + 1);
      const stop = end === -1 ? text.length : end + 1;
      out += text.slice(i, stop);
      i = stop;
    } else if (c === '#' || text.startsWith('//', i)) {
      const end = text.indexOf('\n', i);
      i = end === -1 ? text.length : end;
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      i = end === -1 ? text.length : end + 2;
      out += ' ';
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const unquote = (s: string): string => (s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s);

function parseBind(text: string): Parsed<TsigFile> {
  const clause = /(?:^|[\s;}])key\s+("[^"]*"|[^\s{;"]+)\s*\{([^}]*)\}\s*;?/g;
  const keys: TsigFileKey[] = [];
  for (const m of text.matchAll(clause)) {
    const name = canonicalName(unquote(m[1]!));
    const body = m[2]!;
    const algorithm = /(?:^|[\s;])algorithm\s+("[^"]*"|[^\s;]+)\s*;/.exec(body);
    const secret = /(?:^|[\s;])secret\s+("[^"]*"|[^\s;]+)\s*;/.exec(body);
    if (!secret) return { ok: false, error: `key "${name}" has no secret statement: ${FORMATS_HINT}` };
    keys.push({
      name,
      ...(algorithm && { algorithm: unquote(algorithm[1]!).toLowerCase() }),
      secret: unquote(secret[1]!),
    });
  }
  if (keys.length === 0) return { ok: false, error: `holds no complete key clause: ${FORMATS_HINT}` };
  return { ok: true, value: { format: 'bind', keys } };
}

// ---- Knot ------------------------------------------------------------------

function parseKnot(text: string): Parsed<TsigFile> {
  const doc = parseDocument(text, { prettyErrors: false });
  const bad = { ok: false as const, error: `has a "key:" section that is not a Knot key list: ${FORMATS_HINT}` };
  if (doc.errors.length > 0 || !isMap(doc.contents)) return bad;
  const list = doc.contents.get('key', true);
  if (!isSeq(list)) return bad;
  const keys: TsigFileKey[] = [];
  for (const item of list.items) {
    if (!isMap(item)) return bad;
    const field = (k: string): string | undefined => {
      const v = item.get(k, true);
      return isScalar(v) && (typeof v.value === 'string' || typeof v.value === 'number') ? String(v.value) : undefined;
    };
    const id = field('id');
    const secret = field('secret');
    const algorithm = field('algorithm');
    if (id === undefined || secret === undefined) return bad;
    keys.push({ name: canonicalName(id), ...(algorithm !== undefined && { algorithm: algorithm.toLowerCase() }), secret });
  }
  if (keys.length === 0) return bad;
  return { ok: true, value: { format: 'knot', keys } };
}
