// Shared pieces for the zone transfer tests: a TSIG key file, eipdns configs
// for a primary zone served by transfer and a secondary zone fed by it, and
// raw AXFR/IXFR/NOTIFY exchanges over real sockets.

import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { CLASS, OPCODE, TYPE } from '../../src/wire/codes.js';
import { textToWire } from '../../src/wire/name.js';
import { MessageWriter } from '../../src/wire/writer.js';
import { tsigKey, sign, type TsigKey } from '../../src/transfer/tsig.js';
import type { ZoneData } from '../../src/zone/data.js';

export const KEY_NAME = 'transfer-key';

/** A fresh hmac-sha256 secret, as `tsig-keygen` would print it (base64). */
export function newSecret(): string {
  return randomBytes(32).toString('base64');
}

export function keyOf(secret: string, name = KEY_NAME): TsigKey {
  return tsigKey({ name, algorithm: 'hmac-sha256', secret });
}

export interface PrimaryYaml {
  readonly listen?: string;
  readonly records: readonly string[];
  readonly allow?: readonly string[];
  readonly notify?: readonly string[];
  readonly tsig?: boolean;
  readonly soa?: { refresh: number; retry: number; expire: number };
  readonly ttl?: number;
  readonly pollMs?: number;
  readonly source?: 'inventory' | { endpoint: string };
}

export function primaryYaml(o: PrimaryYaml): string {
  const soa = o.soa ?? { refresh: 3600, retry: 1, expire: 7200 };
  const ec2 =
    o.source === undefined || o.source === 'inventory'
      ? `ec2:\n  poll_interval_ms: ${o.pollMs ?? 60000}\n  inventory: inventory.json`
      : `ec2:\n  region: us-east-1\n  endpoint: "${o.source.endpoint}"\n  poll_interval_ms: ${o.pollMs ?? 60000}`;
  return `
listen: ["${o.listen ?? '127.0.0.1:0'}"]
upstream:
  servers: ["127.0.0.1:9"]
  timeout_ms: 300
${ec2}
zones:
  - name: internal
    ttl: ${o.ttl ?? 5}
    soa: { refresh: ${soa.refresh}, retry: ${soa.retry}, expire: ${soa.expire} }
    records:
${o.records.map((r) => `      ${r}`).join('\n')}
    transfer:
      allow: [${(o.allow ?? ['127.0.0.1/32']).map((c) => `"${c}"`).join(', ')}]
      notify: [${(o.notify ?? []).map((c) => `"${c}"`).join(', ')}]
${o.tsig === false ? '' : `    tsig: { name: ${KEY_NAME}, algorithm: hmac-sha256, secret_file: transfer.key }\n`}acl:
  allow: ["127.0.0.0/8"]
log:
  level: warn
`;
}

export function secondaryYaml(o: { listen?: string; primaries: readonly string[]; tsig?: boolean; zone?: string; transferAllow?: readonly string[] }): string {
  return `
listen: ["${o.listen ?? '127.0.0.1:0'}"]
upstream:
  servers: ["127.0.0.1:9"]
  timeout_ms: 300
zones:
  - name: ${o.zone ?? 'internal'}
    primaries: [${o.primaries.map((p) => `"${p}"`).join(', ')}]
${o.tsig === false ? '' : `    tsig: { name: ${KEY_NAME}, algorithm: hmac-sha256, secret_file: transfer.key }\n`}${
    o.transferAllow ? `    transfer: { allow: [${o.transferAllow.map((c) => `"${c}"`).join(', ')}] }\n` : ''
  }acl:
  allow: ["127.0.0.0/8"]
log:
  level: warn
`;
}

/** A query message (AXFR, IXFR with our serial, SOA...), optionally signed; returns bytes and the request MAC. */
export function request(o: { zone?: string; type: number; id?: number; serial?: number; key?: TsigKey; opcode?: number; now?: number; soa?: ZoneData }): { msg: Buffer; mac?: Buffer } {
  const w = new MessageWriter(4096);
  const apex = textToWire(o.zone ?? 'internal');
  w.question(apex, o.type, CLASS.IN);
  if (o.serial !== undefined) {
    const tail = Buffer.alloc(20);
    tail.writeUInt32BE(o.serial >>> 0, 0);
    w.record(2, apex, TYPE.SOA, CLASS.IN, 0, Buffer.concat([Buffer.from([0]), Buffer.from([0]), tail]));
  }
  const msg = w.finish(o.id ?? 0x4321, ((o.opcode ?? OPCODE.QUERY) << 11) | (o.opcode === OPCODE.NOTIFY ? 0x0400 : 0));
  if (o.key === undefined) return { msg };
  const signed = sign(msg, o.key, { now: o.now ?? Math.floor(Date.now() / 1000) });
  return { msg: signed.msg, mac: signed.mac };
}

/** Sends one framed request over TCP (from `localAddress`), collects every reply message until the peer stops for `quietMs`. */
export function tcpMessages(port: number, msg: Buffer, o: { localAddress?: string; quietMs?: number; host?: string } = {}): Promise<Buffer[]> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    let pending = Buffer.alloc(0);
    const socket = connect({ host: o.host ?? '127.0.0.1', port, ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
    let quiet: NodeJS.Timeout | undefined;
    const done = (): void => {
      clearTimeout(quiet);
      socket.destroy();
      resolve(out);
    };
    const arm = (): void => {
      clearTimeout(quiet);
      quiet = setTimeout(done, o.quietMs ?? 500);
    };
    socket.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(msg.length);
      socket.write(Buffer.concat([len, msg]));
      arm();
    });
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        out.push(Buffer.from(pending.subarray(2, 2 + pending.readUInt16BE(0))));
        pending = pending.subarray(2 + pending.readUInt16BE(0));
      }
      arm();
    });
    socket.on('error', done);
    socket.on('close', done);
  });
}

export const rcodeOf = (msg: Buffer): number => msg[3]! & 0x0f;
