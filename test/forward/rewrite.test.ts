import { afterEach, describe, expect, it } from 'vitest';
import type { Forwarder, ForwardRequest } from '../../src/forward/forwarder.js';
import { createEipRewrite, rewriteViewOf, type RewriteView } from '../../src/forward/rewrite.js';
import { createUpstream, type Upstream } from '../../src/forward/upstream.js';
import { startUpstreamStub, type UpstreamStub } from '../helpers/upstream-stub.js';
import { addresses, buildQuery, parse, request } from './query.js';

let stub: UpstreamStub | undefined;
let upstream: Upstream | undefined;

afterEach(async () => {
  await upstream?.close();
  await stub?.close();
  stub = undefined;
  upstream = undefined;
});

async function chain(records: Record<string, readonly string[]>, view: () => RewriteView): Promise<Forwarder> {
  stub = await startUpstreamStub({ records, ttl: 300 });
  upstream = createUpstream({ servers: [{ host: stub.address, port: stub.port }], timeoutMs: 2000 });
  return createEipRewrite(upstream, view);
}

const eips = rewriteViewOf(
  new Map([
    ['203.0.113.10', '10.0.1.10'],
    ['203.0.113.11', '10.0.1.11'],
  ]),
  5,
).elasticIps;

describe('Elastic IP rewrite', () => {
  it('answers the private IP for an associated EIP, the TTL capped at the zone TTL', async () => {
    const f = await chain({ 'api.example.com': ['203.0.113.10'] }, () => ({ elasticIps: eips, ttl: 5 }));
    const p = parse(await f.resolve(request(buildQuery('api.example.com', { id: 0x77 }), false)));
    expect(p.header.id).toBe(0x77);
    expect(p.answers.map((r) => [r.address, r.ttl])).toEqual([['10.0.1.10', 5]]);
    expect(f.stats()).toEqual({ rewritten: 1 });
  });

  it('leaves other addresses and unassociated EIPs as they are, in place', async () => {
    const f = await chain({ 'mixed.example.com': ['203.0.113.11', '198.51.100.7', '203.0.113.99'] }, () => ({
      elasticIps: eips,
      ttl: 5,
    }));
    const reply = await f.resolve(request(buildQuery('mixed.example.com'), false));
    expect(addresses(reply)).toEqual(['10.0.1.11', '198.51.100.7', '203.0.113.99']);
  });

  it('changes nothing, TTLs included, when no address is an EIP', async () => {
    const f = await chain({ 'www.example.com': ['198.51.100.7'] }, () => ({ elasticIps: eips, ttl: 5 }));
    const p = parse(await f.resolve(request(buildQuery('www.example.com'), false)));
    expect(p.answers.map((r) => [r.address, r.ttl])).toEqual([['198.51.100.7', 300]]);
    expect(f.stats()).toEqual({ rewritten: 0 });
  });

  it('follows the map it is given on every reply (an EIP move, expiry)', async () => {
    let view: RewriteView = { elasticIps: eips, ttl: 5 };
    const f = await chain({ 'api.example.com': ['203.0.113.10'] }, () => view);
    expect(addresses(await f.resolve(request(buildQuery('api.example.com'), false)))).toEqual(['10.0.1.10']);
    view = rewriteViewOf(new Map([['203.0.113.10', '10.0.2.20']]), 5);
    expect(addresses(await f.resolve(request(buildQuery('api.example.com'), false)))).toEqual(['10.0.2.20']);
    view = { elasticIps: undefined, ttl: 0 };
    expect(addresses(await f.resolve(request(buildQuery('api.example.com'), false)))).toEqual(['203.0.113.10']);
  });

  it('clears AD on a rewritten reply, and leaves a signed answer to a DO client alone', async () => {
    // A layer below that answers like a validating resolver: AD set, an RRSIG beside the A record.
    const signedReply = (req: ForwardRequest, withSig: boolean): Buffer => {
      const a = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 203, 0, 113, 10]);
      const sig = Buffer.from([0xc0, 0x0c, 0, 46, 0, 1, 0, 0, 0x0e, 0x10, 0, 2, 0xab, 0xcd]);
      const question = req.msg.subarray(12, req.query.questionEnd);
      const header = Buffer.from([req.msg[0]!, req.msg[1]!, 0x81, 0xa0, 0, 1, 0, withSig ? 2 : 1, 0, 0, 0, 0]);
      return Buffer.concat([header, question, a, ...(withSig ? [sig] : [])]);
    };
    let withSig = false;
    const below: Forwarder = { resolve: (req) => signedReply(req, withSig), stats: () => ({}), close: async () => undefined };
    const f = createEipRewrite(below, () => ({ elasticIps: eips, ttl: 5 }));

    const plain = f.resolve(request(buildQuery('api.example.com'), false)) as Buffer;
    expect(plain[3]! & 0x20).toBe(0);
    expect([...plain.subarray(plain.length - 4)]).toEqual([10, 0, 1, 10]);

    withSig = true;
    const doQuery = buildQuery('api.example.com', { edns: 1232 });
    doQuery[doQuery.length - 4] = 0x80; // the OPT's DO bit (flags, high byte)
    const signed = f.resolve(request(doQuery, false)) as Buffer;
    expect(signed[3]! & 0x20).toBe(0x20);
    expect(signed.includes(Buffer.from([203, 0, 113, 10]))).toBe(true);
  });
});
