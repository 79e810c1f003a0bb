// The inventory file stands in for DescribeAddresses: it holds exactly what
// `aws ec2 describe-addresses --output json` prints, so an operator can
// snapshot a real account (or hand-write a demo) and eipdns reads it with the
// same matching code as the API path.

import { readFile } from 'node:fs/promises';
import type { AddressLike, TagLike } from './match.js';

export type InventoryErrorCode = 'InventoryMissing' | 'InventoryUnreadable' | 'InventoryMalformed';

export class InventoryError extends Error {
  constructor(
    readonly code: InventoryErrorCode,
    message: string,
    readonly file: string,
  ) {
    super(message);
    this.name = 'InventoryError';
  }
}

const STRING_FIELDS = ['PublicIp', 'AllocationId', 'AssociationId', 'PrivateIpAddress', 'InstanceId', 'NetworkInterfaceId'] as const;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Validates the parsed document field by field rather than casting it: a
 * half-edited file must fail the poll (keeping the last answers), not yield
 * wrong ones.
 */
export function parseInventory(text: string, file: string): AddressLike[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new InventoryError('InventoryMalformed', `${file}: not JSON: ${(err as Error).message}`, file);
  }
  const fail = (where: string, what: string): never => {
    throw new InventoryError('InventoryMalformed', `${file}: ${where}: ${what}`, file);
  };
  if (!isObject(doc) || !Array.isArray(doc.Addresses)) {
    return fail('top level', 'expected {"Addresses": [...]} as printed by `aws ec2 describe-addresses`');
  }
  return doc.Addresses.map((entry: unknown, n): AddressLike => {
    const where = `Addresses[${n}]`;
    if (!isObject(entry)) return fail(where, 'expected an object');
    const out: { -readonly [K in (typeof STRING_FIELDS)[number]]?: string } & { Tags?: TagLike[] } = {};
    for (const key of STRING_FIELDS) {
      const v = entry[key];
      if (v === undefined) continue;
      if (typeof v !== 'string') return fail(`${where}.${key}`, 'expected a string');
      out[key] = v;
    }
    const tags = entry.Tags;
    if (tags !== undefined) {
      if (!Array.isArray(tags)) return fail(`${where}.Tags`, 'expected a list of {Key, Value}');
      out.Tags = tags.map((t: unknown, i): TagLike => {
        if (!isObject(t) || typeof t.Key !== 'string' || typeof t.Value !== 'string') {
          return fail(`${where}.Tags[${i}]`, 'expected {"Key": string, "Value": string}');
        }
        return { Key: t.Key, Value: t.Value };
      });
    }
    return out;
  });
}

export async function readInventory(file: string): Promise<AddressLike[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InventoryError(
      code === 'ENOENT' ? 'InventoryMissing' : 'InventoryUnreadable',
      `${file}: ${(err as Error).message}`,
      file,
    );
  }
  return parseInventory(text, file);
}
