// `eipdns probe`: one real DNS query to a running server, for health checks
// that have no shell, curl or dig (the container image's HEALTHCHECK, a
// Kubernetes exec liveness probe, a systemd ExecStartPost).
//
// It asks for the first zone's SOA, which eipdns answers itself (never
// forwarded, so a dead upstream cannot make a live server look dead), and
// passes on any well-formed reply to that query: right ID, QR set, the same
// question echoed. The rcode does not matter: REFUSED (an ACL that leaves out
// loopback) or SERVFAIL still prove the listener and the pipeline answer.
//
// Exit codes: 0 answered; 1 no answer or a malformed one; 2 bad usage.

import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { loopbackFor, parseHostPort, showHostPort } from './config/net.js';
import type { Config, HostPort } from './config/types.js';
import { CLASS, rcodeName, TYPE } from './wire/codes.js';
import { HEADER_SIZE, QR, headerRcode, opcodeOf, readId } from './wire/header.js';
import { sameQuestion, textToWire } from './wire/name.js';
import { MessageWriter } from './wire/writer.js';

export const DEFAULT_PROBE_TIMEOUT_MS = 2_000;


export type ProbeResult =
  | { readonly ok: true; readonly rcode: number; readonly ms: number }
  | { readonly ok: false; readonly reason: string };

export interface ProbeIo {
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream;
}

/**
 * Where to probe: `--server HOST:PORT` (port 53 by default), else the config's
 * first listen address, a wildcard one asked on loopback.
 * @throws Error with a message for the user when `server` is not an address.
 */
export function probeTarget(config: Config, server?: string): HostPort {
  if (server !== undefined) {
    const parsed = parseHostPort(server, { defaultPort: 53, minPort: 1, hostnameHint: 'give the address to probe' });
    if (!parsed.ok) throw new Error(`--server: ${parsed.error}`);
    return parsed.value;
  }
  const first = config.listen[0];
  if (first === undefined) throw new Error(`${config.file} has no listen address; give --server HOST:PORT`);
  return { host: loopbackFor(first.host), port: first.port };
}

/** The name probed: the first zone's apex (eipdns answers its SOA itself). */
export function probeName(config: Config): string {
  return config.zones[0]?.name ?? '';
}

export function buildProbeQuery(id: number, name: string): Buffer {
  const w = new MessageWriter(512);
  w.question(textToWire(name), TYPE.SOA, CLASS.IN);
  return w.finish(id, 0); // flags 0: a plain query, no recursion wanted
}

/** Why `reply` is not an answer to `query`, or undefined when it is. */
export function checkReply(query: Buffer, reply: Buffer): string | undefined {
  if (reply.length < HEADER_SIZE) return `${reply.length}-byte reply, shorter than a DNS header`;
  if (readId(reply) !== readId(query)) return 'reply has another ID';
  if ((reply[2]! & QR) === 0) return 'reply is not a response (QR clear)';
  if (opcodeOf(reply) !== 0) return 'reply has another opcode';
  if (reply.readUInt16BE(4) !== 1) return `reply has ${reply.readUInt16BE(4)} questions`;
  // The question is echoed right after the header (names compared
  // ASCII-case-insensitively).
  if (!sameQuestion(reply, query, query.length)) return 'reply echoes another question';
  return undefined;
}

/** Sends one query over UDP and waits for its answer, ignoring anything else that arrives. */
export function probe(target: HostPort, name: string, timeoutMs = DEFAULT_PROBE_TIMEOUT_MS): Promise<ProbeResult> {
  const query = buildProbeQuery(randomInt(0x10000), name);
  const socket = createSocket(isIPv6(target.host) ? 'udp6' : 'udp4');
  const started = performance.now();
  return new Promise((resolve) => {
    let lastProblem: string | undefined;
    const finish = (result: ProbeResult): void => {
      clearTimeout(timer);
      socket.close();
      resolve(result);
    };
    const timer = setTimeout(
      () => finish({ ok: false, reason: lastProblem ?? `no answer within ${timeoutMs} ms` }),
      timeoutMs,
    );
    socket.on('error', (err) => finish({ ok: false, reason: err.message }));
    socket.on('message', (reply, from) => {
      // Only the server asked may answer (a connected socket filters this too).
      if (from.port !== target.port) return;
      const problem = checkReply(query, reply);
      if (problem !== undefined) {
        // Keep waiting: a stray or forged datagram must not decide the result.
        lastProblem = problem;
        return;
      }
      finish({ ok: true, rcode: headerRcode(reply), ms: performance.now() - started });
    });
    // connect() makes a refused port an immediate ECONNREFUSED instead of a timeout.
    socket.connect(target.port, target.host, () => socket.send(query));
  });
}

export async function runProbe(
  config: Config,
  options: { readonly server?: string; readonly timeoutMs?: number },
  io: ProbeIo,
): Promise<number> {
  let target: HostPort;
  try {
    target = probeTarget(config, options.server);
  } catch (err) {
    io.err.write(`eipdns probe: ${(err as Error).message}\n`);
    return 2;
  }
  const name = probeName(config);
  const where = showHostPort(target);
  const asked = `${name === '' ? '.' : name} SOA`;
  const result = await probe(target, name, options.timeoutMs);
  if (!result.ok) {
    io.err.write(`eipdns probe: ${where}: ${asked}: ${result.reason}\n`);
    return 1;
  }
  io.out.write(`${where}: ${asked}: ${rcodeName(result.rcode)} in ${result.ms.toFixed(1)} ms\n`);
  return 0;
}
