// TSIG (RFC 8945) against the real tools: BIND's dig and Knot's kdig sign
// with -y, eipdns verifies and signs its answers, and the tools verify those
// (they print a failure otherwise). Plus the pieces the tools do not reach:
// stream chaining, unsigned runs, truncated MACs, the time check.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TSIG_ERROR, TYPE } from '../../src/wire/codes.js';
import { findTsigStart, readTsig, sign, StreamSigner, StreamVerifier, verify } from '../../src/transfer/tsig.js';
import { inventory, startTestServer, type TestServer } from '../helpers/server.js';
import { requireTools, run } from '../interop/tools.js';
import { sendUdp } from '../helpers/dns-client.js';
import { KEY_NAME, keyOf, newSecret, primaryYaml, request, tcpMessages } from './helpers.js';

const secret = newSecret();
const key = keyOf(secret);
/** Enough A records that the answer fits 512 octets, and does not with a TSIG record added. */
const BIG = Array.from({ length: 28 }, (_, i) => `10.0.7.${i + 1}`);
const now = Math.floor(Date.now() / 1000);

/** `msg` with its TSIG MAC cut to its first `size` octets (RDLENGTH and MAC size adjusted). */
function truncateMac(msg: Buffer, size: number): Buffer {
  const t = readTsig(msg, findTsigStart(msg)!);
  const macAt = msg.length - 6 - t.other.length - t.mac.length;
  const out = Buffer.concat([msg.subarray(0, macAt - 2), Buffer.from([size >> 8, size & 0xff]), t.mac.subarray(0, size), msg.subarray(macAt + t.mac.length)]);
  const rdlengthAt = t.start + 2 + KEY_NAME.length + 8;
  out.writeUInt16BE(out.readUInt16BE(rdlengthAt) - (t.mac.length - size), rdlengthAt);
  return out;
}

describe('sign and verify', () => {
  it('round-trips a request and its response (the response covers the request MAC)', () => {
    const q = request({ type: TYPE.SOA, key, now });
    const tsig = readTsig(q.msg, findTsigStart(q.msg)!);
    expect(verify(q.msg, tsig, key, { now }).ok).toBe(true);
    const reply = Buffer.from(q.msg.subarray(0, tsig.start));
    reply.writeUInt16BE(reply.readUInt16BE(10) - 1, 10);
    reply[2] = reply[2]! | 0x80;
    const signed = sign(reply, key, { now, prior: tsig.mac }).msg;
    const rt = readTsig(signed, findTsigStart(signed)!);
    expect(verify(signed, rt, key, { now, prior: tsig.mac }).ok).toBe(true);
    expect(verify(signed, rt, key, { now }).ok).toBe(false); // without the request MAC it does not match
  });

  it('answers BADSIG to a flipped bit, BADKEY to another key, BADTIME outside the fudge, BADTRUNC to a truncated MAC', () => {
    const q = request({ type: TYPE.SOA, key, now }).msg;
    const flipped = Buffer.from(q);
    flipped[13] = flipped[13]! ^ 0x01;
    const check = (m: Buffer, o: { now?: number; other?: typeof key } = {}) => {
      const v = verify(m, readTsig(m, findTsigStart(m)!), o.other ?? key, { now: o.now ?? now });
      return v.ok ? 0 : v.error;
    };
    expect(check(flipped)).toBe(TSIG_ERROR.BADSIG);
    expect(check(q, { other: keyOf(newSecret(), 'other-key') })).toBe(TSIG_ERROR.BADKEY);
    expect(check(q, { other: keyOf(newSecret()) })).toBe(TSIG_ERROR.BADSIG);
    expect(check(q, { now: now + 301 })).toBe(TSIG_ERROR.BADTIME);
    expect(check(q, { now: now - 300 })).toBe(0);
    // The same MAC cut to 16 octets (allowed by §5.2.2.1, refused by our policy), and to 8 (never allowed).
    expect(check(truncateMac(q, 16))).toBe(TSIG_ERROR.BADTRUNC);
    const tooShort = truncateMac(q, 8);
    const v = verify(tooShort, readTsig(tooShort, findTsigStart(tooShort)!), key, { now });
    expect(v.ok ? 'ok' : v.rcode).toBe(1); // FORMERR
  });

  it('chains a stream: every message signed, and unsigned ones in between accepted when covered', () => {
    const requestMac = request({ type: TYPE.AXFR, key, now }).mac!;
    const messages = [0, 1, 2, 3].map((i) => Buffer.from(request({ type: TYPE.AXFR, id: 100 + i }).msg));
    const signer = new StreamSigner(key, requestMac, () => now);
    const all = messages.map((m) => signer.sign(m));
    const v = new StreamVerifier(key, requestMac, () => now);
    for (const m of all) expect(v.next(m)).toBeUndefined();
    expect(v.finish()).toBeUndefined();
    // Reordered: fails.
    const w = new StreamVerifier(key, requestMac, () => now);
    expect(w.next(all[0]!)).toBeUndefined();
    expect(w.next(all[2]!)).toMatch(/BADSIG/);
    // Signed, unsigned, signed (covering the unsigned one): accepted. Signed then unsigned at the end: not.
    const s2 = new StreamSigner(key, requestMac, () => now);
    const first = s2.sign(messages[0]!);
    const third = sign(messages[2]!, key, { now, prior: readTsig(first, findTsigStart(first)!).mac, between: [messages[1]!], timersOnly: true }).msg;
    const x = new StreamVerifier(key, requestMac, () => now);
    expect([x.next(first), x.next(messages[1]!), x.next(third), x.finish()]).toEqual([undefined, undefined, undefined, undefined]);
    const y = new StreamVerifier(key, requestMac, () => now);
    expect([y.next(first), y.next(messages[1]!)]).toEqual([undefined, undefined]);
    expect(y.finish()).toMatch(/not signed/);
  });
});

describe('with dig and kdig (-y hmac-sha256)', () => {
  let tools: Record<'dig' | 'kdig', string>;
  let srv: TestServer;
  let skewed: TestServer;
  const y = `hmac-sha256:${KEY_NAME}:${secret}`;

  beforeAll(async () => {
    tools = requireTools('dig', 'kdig');
    const files = {
      'inventory.json': inventory([{ publicIp: '198.51.100.10', allocationId: 'eipalloc-0db00000000000001', privateIp: '10.0.1.10', tags: { Role: 'db' } }]),
      'transfer.key': `key "${KEY_NAME}" {\n\talgorithm hmac-sha256;\n\tsecret "${secret}";\n};\n`,
    };
    const yaml = primaryYaml({ records: ['db: { elastic_ip: { tag: { Role: db } } }', `big: { a: [${BIG.map((a) => `"${a}"`).join(', ')}] }`] });
    srv = await startTestServer(yaml, { files });
    // The same key, on a server whose clock is 20 minutes ahead.
    skewed = await startTestServer(yaml, { files, now: () => Date.now() + 1_200_000 });
    await srv.server.discovery().pollNow();
    await skewed.server.discovery().pollNow();
  });
  afterAll(async () => {
    await srv?.close();
    await skewed?.close();
  });

  const ask = (tool: 'dig' | 'kdig', port: number, ...args: string[]) => run(tools[tool], ['@127.0.0.1', '-p', String(port), ...args]);

  it.each(['dig', 'kdig'] as const)('%s: a signed query gets a signed answer the tool verifies', async (tool) => {
    const r = await ask(tool, srv.port, 'db.internal', 'A', '-y', y);
    expect(r.stdout).toMatch(/status: NOERROR/);
    expect(r.stdout).toMatch(/10\.0\.1\.10/);
    expect(r.stdout).toMatch(/TSIG\s+hmac-sha256\.?\s+\d+\s+300\s+32\s/);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/verif|BADSIG|failure|WARNING/i);
  });

  it('truncates a signed UDP answer that the TSIG record would push past the client\'s size, keeping the TSIG', async () => {
    const q = request({ zone: 'big.internal', type: TYPE.A, key });
    const plain = (await sendUdp(srv.port, request({ zone: 'big.internal', type: TYPE.A }).msg))!;
    // The unsigned answer fits (no TC), so only the TSIG record could push it over.
    expect(plain.length).toBeLessThanOrEqual(512);
    expect(plain[2]! & 0x02).toBe(0);
    const reply = (await sendUdp(srv.port, q.msg))!;
    expect(reply.length).toBeLessThanOrEqual(512);
    expect(reply[2]! & 0x02).toBe(0x02);
    expect(reply.readUInt16BE(6)).toBe(0);
    const t = readTsig(reply, findTsigStart(reply)!);
    expect(verify(reply, t, key, { now: Math.floor(Date.now() / 1000), prior: q.mac! }).ok).toBe(true);
    // Over TCP the whole answer comes, signed.
    const [full] = await tcpMessages(srv.port, q.msg, { quietMs: 300 });
    expect(full!.readUInt16BE(6)).toBe(BIG.length);
    expect(full![2]! & 0x02).toBe(0);
  });

  it('dig +noedns: a signed answer truncated for UDP verifies', async () => {
    const r = await ask('dig', srv.port, 'big.internal', 'A', '+noedns', '+ignore', '-y', y);
    expect(r.stdout).toMatch(/flags: qr tc aa|flags: qr aa tc|;; flags:[^;]*\btc\b/);
    expect(r.stdout).toMatch(/TSIG\s+hmac-sha256/);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/verif|BADSIG|failure|WARNING/i);
  });

  it.each(['dig', 'kdig'] as const)('%s: AXFR signed every message of the way', async (tool) => {
    const r = await ask(tool, srv.port, 'internal', 'AXFR', '-y', y);
    expect(r.stdout).toMatch(/db\.internal\.\s+5\s+IN\s+A\s+10\.0\.1\.10/);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/Transfer failed|verif|BADSIG|failure|WARNING/i);
  });

  it.each(['dig', 'kdig'] as const)('%s: a wrong secret gets NOTAUTH with BADSIG, an unknown key BADKEY', async (tool) => {
    const wrong = await ask(tool, srv.port, 'db.internal', 'A', '-y', `hmac-sha256:${KEY_NAME}:${newSecret()}`);
    // dig shows the header rcode (NOTAUTH), kdig folds the TSIG error into it.
    expect(wrong.stdout).toMatch(/status: (NOTAUTH|BADSIG)/);
    expect(wrong.stdout).toMatch(/BADSIG/);
    const unknown = await ask(tool, srv.port, 'db.internal', 'A', '-y', `hmac-sha256:nobody:${secret}`);
    expect(unknown.stdout).toMatch(/BADKEY/);
  });

  it.each(['dig', 'kdig'] as const)('%s: a clock 20 minutes apart gets BADTIME, signed, with our time', async (tool) => {
    const r = await ask(tool, skewed.port, 'db.internal', 'A', '-y', y);
    expect(r.stdout).toMatch(/status: (NOTAUTH|BADTIME)/);
    // Other Data carries our clock (6 octets). The MAC verifies: the tools
    // report the clock skew ("clocks are unsynchronized", "TSIG out of time
    // window"), never a bad signature.
    expect(r.stdout).toMatch(/BADTIME 6 \S+/);
    expect(`${r.stdout}${r.stderr}`).toMatch(/unsynchronized|out of time window/);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/BADSIG|bad signature|invalid/i);
    expect(skewed.server.transfer.stats.tsigFailures).toBeGreaterThan(0);
  });
});

describe('a signed message from a stranger', () => {
  let srv: TestServer;
  beforeAll(async () => {
    // Only 127.0.0.1 is a client or a transfer peer; 127.0.0.2 is neither.
    srv = await startTestServer(primaryYaml({ records: ['db: { a: ["10.0.1.10"] }'], allow: ['127.0.0.1/32'] }), {
      files: { 'inventory.json': inventory([]), 'transfer.key': `${secret}\n` },
      configure: (c) => ({ ...c, acl: { allow: ['127.0.0.1/32'] } }),
    });
  });
  afterAll(async () => srv?.close());

  it('gets a plain REFUSED, no MAC computed and no TSIG error to reflect; a known client gets BADSIG', async () => {
    const forged = request({ zone: 'db.internal', type: TYPE.A, key: keyOf(newSecret()) }).msg;
    const stranger = (await sendUdp(srv.port, forged, { from: '127.0.0.2' }))!;
    expect(stranger[3]! & 0x0f).toBe(5);
    expect(stranger.readUInt16BE(10)).toBe(0);
    expect(srv.server.transfer.stats).toMatchObject({ tsigStrangers: 1, tsigFailures: 0 });
    const known = (await sendUdp(srv.port, forged, { from: '127.0.0.1' }))!;
    expect(known[3]! & 0x0f).toBe(9); // NOTAUTH
    expect(readTsig(known, findTsigStart(known)!).error).toBe(TSIG_ERROR.BADSIG);
    expect(srv.server.transfer.stats).toMatchObject({ tsigStrangers: 1, tsigFailures: 1 });
  });
});
