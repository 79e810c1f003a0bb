// `eipdns claim NAME`: associate the Elastic IP behind an elastic_ip record
// with the instance this runs on. Meant for a boot script, so it must be safe
// to run on every boot of every instance built from the same AMI: it is a
// no-op when the address is already here, and it never takes the address from
// another live instance unless told to (--force).
//
// Exit codes: 0 associated or nothing to do; 1 runtime failure (instance
// metadata, EC2 API, no matching Elastic IP); 2 bad usage or config; 3 refused
// because the address is, or may be, in use elsewhere (--force overrides).

import {
  AssociateAddressCommand,
  DescribeAddressesCommand,
  DescribeInstancesCommand,
  type Address,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { MetadataService } from '@aws-sdk/ec2-metadata-service';
import type { Config, ElasticIpSelector, RecordSource } from '../config/types.js';
import { canonicalName } from '../wire/name.js';
import { createEc2Client, describeError } from './client.js';
import { matchesElasticIp } from './match.js';

export interface ClaimIo {
  readonly force: boolean;
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream;
  /** Used instead of a client built from the config (tests); left open. */
  readonly client?: EC2Client;
  /** Instance metadata base URL; wins over the environment. */
  readonly imdsEndpoint?: string;
  /** Where AWS_EC2_METADATA_SERVICE_ENDPOINT(_MODE) are read; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_REFUSED = 3;

/** The SDK's defaults for AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE IPv4 / IPv6. */
const IMDS_ENDPOINTS: Readonly<Record<string, string>> = {
  IPv4: 'http://169.254.169.254',
  IPv6: 'http://[fd00:ec2::254]',
};
/** IMDS answers in milliseconds on EC2; anywhere else nothing answers at all. */
const IMDS_TIMEOUT_MS = 1_000;
const IMDS_ATTEMPTS = 3;
/** Doubles per retry: 0.5 s, then 1 s. */
const IMDS_RETRY_DELAY_MS = 500;
const IMDS_TOKEN_TTL_SECONDS = 21600;

/**
 * States in which the holder still uses (or is about to use) the address.
 * A pending instance counts: it is booting and will run its own claim.
 * stopping/shutting-down instances are on their way out, so they count as gone.
 */
const LIVE_STATES = new Set(['pending', 'running']);

const RULE =
  'rule: one already on this instance, else an unassociated one, else one whose instance is stopped or gone, ' +
  'else with --force the first by allocation id';

class ClaimError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'ClaimError';
  }
}

export async function claim(config: Config, name: string, io: ClaimIo): Promise<number> {
  try {
    return await run(config, name, io);
  } catch (err) {
    if (!(err instanceof ClaimError)) throw err;
    io.err.write(`eipdns claim: ${err.message}\n`);
    return err.exitCode;
  }
}

async function run(config: Config, name: string, io: ClaimIo): Promise<number> {
  const { fqdn, selector } = findRecord(config, name);
  if (config.ec2.inventory !== undefined) {
    throw new ClaimError(
      EXIT_USAGE,
      `${config.file} sets ec2.inventory (${config.ec2.inventory}); claim changes associations through the EC2 API, ` +
        'which an inventory file cannot stand in for: use a config without ec2.inventory',
    );
  }

  const base = imdsBase(io);
  const imds = metadataService(base);
  const token = await imdsToken(imds, base);
  const instanceId = await imdsGet(imds, base, '/latest/meta-data/instance-id', token);
  if (!/^i-[0-9a-f]+$/.test(instanceId)) {
    throw new ClaimError(EXIT_FAILURE, `instance metadata at ${base.origin} gave "${instanceId}" as the instance id`);
  }
  const region =
    config.ec2.region ?? (await imdsGet(imds, base, '/latest/meta-data/placement/region', token));

  const client =
    io.client ??
    createEc2Client({
      region,
      ...(config.ec2.endpoint !== undefined ? { endpoint: config.ec2.endpoint } : {}),
      requestTimeoutMs: config.ec2.requestTimeoutMs,
    });
  try {
    return await associate({ config, io, client, fqdn, selector, instanceId, region });
  } finally {
    if (io.client === undefined) client.destroy();
  }
}

interface Context {
  readonly config: Config;
  readonly io: ClaimIo;
  readonly client: EC2Client;
  readonly fqdn: string;
  readonly selector: ElasticIpSelector;
  readonly instanceId: string;
  readonly region: string;
}

async function associate(ctx: Context): Promise<number> {
  const { io, fqdn, instanceId } = ctx;
  // Unfiltered and matched locally, exactly as discovery does, so claim and
  // the DNS answers agree on which addresses a selector means.
  const described = await ec2(ctx, 'DescribeAddresses', (signal) =>
    ctx.client.send(new DescribeAddressesCommand({}), { abortSignal: signal }),
  );
  const matching = (described.Addresses ?? [])
    .filter((a) => matchesElasticIp(a, ctx.selector))
    .sort((a, b) => (a.AllocationId ?? '').localeCompare(b.AllocationId ?? ''));
  if (matching.length === 0) {
    throw new ClaimError(
      EXIT_FAILURE,
      `${fqdn}: no Elastic IP matches ${describeSelector(ctx.selector)} in ${ctx.region}`,
    );
  }

  const { address, holder } = await choose(ctx, matching);
  const allocationId = address.AllocationId;
  if (allocationId === undefined) {
    // Only EC2-Classic addresses lack one, and those cannot go to a VPC instance.
    throw new ClaimError(EXIT_FAILURE, `${fqdn}: Elastic IP ${address.PublicIp ?? '?'} has no allocation id`);
  }
  const label = `${allocationId} (${address.PublicIp ?? '?'})`;

  if (address.InstanceId === instanceId) {
    io.out.write(
      `${fqdn}: ${label} already associated with ${instanceId} (${address.PrivateIpAddress ?? '?'}); nothing to do\n`,
    );
    return EXIT_OK;
  }

  const was = holder ?? (await currentHolder(ctx, address));
  if (was.live && !io.force) {
    throw new ClaimError(
      EXIT_REFUSED,
      `${fqdn}: ${label} is associated with ${was.text}; refusing to take it from a live holder ` +
        '(an instance cloned from its image must not steal the address); use --force to take it anyway',
    );
  }

  // AllowReassociation=false when it looked free: if someone associated it in
  // the meantime, EC2 refuses instead of this silently taking it from them.
  const associated = address.AssociationId !== undefined;
  await ec2(ctx, 'AssociateAddress', (signal) =>
    ctx.client.send(
      new AssociateAddressCommand({ AllocationId: allocationId, InstanceId: instanceId, AllowReassociation: associated }),
      { abortSignal: signal },
    ),
  );
  io.out.write(`${fqdn}: associated ${label} with ${instanceId} (was: ${was.text})\n`);
  return EXIT_OK;
}

interface Choice {
  readonly address: Address;
  /** Its holder, when choosing already looked it up. */
  readonly holder?: Holder;
}

/**
 * One address out of several a tag selector matched. Preference, so reruns
 * and sibling instances settle without fighting, and so several matches
 * behave as one would: one already on this instance (nothing to do), else an
 * unassociated one (nobody loses it), else the first by allocation id whose
 * holder instance is stopped, stopping, shutting down, terminated or unknown
 * to EC2 (taken without --force, as a lone address would be), else, every
 * holder being live (running, pending, or an interface with no instance), only
 * with --force the first by allocation id, as which live holder to rob is a
 * decision for a human. The holders are looked up with one DescribeInstances.
 */
async function choose(ctx: Context, matching: readonly Address[]): Promise<Choice> {
  const [first] = matching;
  if (first === undefined) throw new Error('choose() needs at least one address');
  if (matching.length === 1) return { address: first };

  const many = `${matching.length} Elastic IPs match ${describeSelector(ctx.selector)}`;
  const pick = (address: Address, why: string, holder?: Holder): Choice => {
    ctx.io.out.write(
      `${ctx.fqdn}: ${many}; chose ${address.AllocationId ?? '?'} (${address.PublicIp ?? '?'}), ${why} (${RULE})\n`,
    );
    return holder !== undefined ? { address, holder } : { address };
  };
  const ours = matching.find((a) => a.InstanceId === ctx.instanceId);
  if (ours !== undefined) return pick(ours, 'already on this instance');
  const free = matching.find((a) => a.AssociationId === undefined);
  if (free !== undefined) return pick(free, 'unassociated');

  const states = await instanceStates(ctx, matching.flatMap(holderInstanceIds));
  const held = matching.map((address) => ({ address, holder: holderOf(address, states) }));
  const gone = held.find((h) => !h.holder.live);
  if (gone !== undefined) return pick(gone.address, `its holder ${gone.holder.text}`, gone.holder);
  if (ctx.io.force) return pick(first, 'every holder live; first by allocation id (--force)', held[0]?.holder);

  const holders = held.map((h) => `${h.address.AllocationId ?? '?'} on ${h.holder.text}`);
  throw new ClaimError(
    EXIT_REFUSED,
    `${ctx.fqdn}: ${many} and all are associated with live holders (${holders.join(', ')}); ` +
      `refusing to pick one (${RULE}); use --force to take ${first.AllocationId ?? '?'}`,
  );
}

interface Holder {
  /** For "was: …" and refusals: "unassociated", "i-… stopped", … */
  readonly text: string;
  readonly live: boolean;
}

async function currentHolder(ctx: Context, address: Address): Promise<Holder> {
  return holderOf(address, await instanceStates(ctx, holderInstanceIds(address)));
}

/** The instance whose state decides whether the address may be taken, if any. */
function holderInstanceIds(address: Address): string[] {
  return address.AssociationId !== undefined && address.InstanceId !== undefined ? [address.InstanceId] : [];
}

/** Instance state by id, as instanceStates() found it: undefined when EC2 does not know the instance. */
type InstanceStates = ReadonlyMap<string, string | undefined>;

function holderOf(address: Address, states: InstanceStates): Holder {
  if (address.AssociationId === undefined) return { text: 'unassociated', live: false };
  const other = address.InstanceId;
  if (other === undefined) {
    // An interface with no instance: a NAT gateway, a load balancer, a
    // detached ENI. Its owner's liveness is unknowable here, so treat it as live.
    return { text: `network interface ${address.NetworkInterfaceId ?? '?'}`, live: true };
  }
  const ip = address.PrivateIpAddress !== undefined ? ` (${address.PrivateIpAddress})` : '';
  const state = states.get(other);
  if (state === undefined) return { text: `${other} not found`, live: false };
  return { text: `${other}${ip} ${state}`, live: LIVE_STATES.has(state) };
}

/**
 * The states of `ids` from one DescribeInstances call. EC2 fails that whole
 * call with InvalidInstanceID.NotFound when any id is unknown (a terminated
 * instance drops out after about an hour), naming the culprits only in the
 * message; rather than parse that, each id is then asked about on its own,
 * and the ones that fail so are "not found". Any other failure leaves the
 * states unknown, and unknown must not mean "take it", so it is fatal.
 */
async function instanceStates(ctx: Context, ids: readonly string[]): Promise<InstanceStates> {
  const unique = [...new Set(ids)];
  const states = new Map<string, string | undefined>();
  if (unique.length === 0) return states;
  try {
    const out = await ctx.client.send(new DescribeInstancesCommand({ InstanceIds: unique }), {
      abortSignal: AbortSignal.timeout(ctx.config.ec2.requestTimeoutMs),
    });
    const instances = out.Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
    for (const id of unique) states.set(id, instances.find((i) => i.InstanceId === id)?.State?.Name);
  } catch (err) {
    const e = describeError(err);
    if (e.code !== 'InvalidInstanceID.NotFound') {
      throw new ClaimError(
        EXIT_FAILURE,
        `${ctx.fqdn}: DescribeInstances ${unique.join(', ')} failed: ${e.code}: ${e.message}`,
      );
    }
    // Alone, the id is the unknown one; among several, find out which.
    for (const id of unique) {
      states.set(id, unique.length === 1 ? undefined : (await instanceStates(ctx, [id])).get(id));
    }
  }
  return states;
}

async function ec2<T>(ctx: Context, op: string, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  try {
    // The client bounds each attempt; this bounds the call, retries included.
    return await call(AbortSignal.timeout(ctx.config.ec2.requestTimeoutMs));
  } catch (err) {
    const e = describeError(err);
    throw new ClaimError(EXIT_FAILURE, `${ctx.fqdn}: ${op} failed: ${e.code}: ${e.message}`);
  }
}

// --- the record ---------------------------------------------------------------

const KIND_NAMES: Record<RecordSource['kind'], string> = {
  elastic_ip: 'elastic_ip',
  instances: 'instances',
  network_interface: 'network_interface',
  static: 'a',
};

function findRecord(config: Config, name: string): { fqdn: string; selector: ElasticIpSelector } {
  const fqdn = canonicalName(name);
  const records = config.zones.flatMap((z) => z.records);
  const record = records.find((r) => r.fqdn === fqdn);
  if (record === undefined) {
    const claimable = records.filter((r) => r.source.kind === 'elastic_ip').map((r) => r.fqdn);
    throw new ClaimError(
      EXIT_USAGE,
      `no record "${fqdn}" in ${config.file} (` +
        (claimable.length > 0 ? `elastic_ip records: ${claimable.join(', ')})` : 'it has no elastic_ip records)'),
    );
  }
  if (record.source.kind !== 'elastic_ip') {
    throw new ClaimError(
      EXIT_USAGE,
      `${fqdn} is an "${KIND_NAMES[record.source.kind]}" record; only elastic_ip records have an address to claim`,
    );
  }
  return { fqdn, selector: record.source.selector };
}

function describeSelector(selector: ElasticIpSelector): string {
  if (selector.allocationId !== undefined) return `allocation_id ${selector.allocationId}`;
  if (selector.publicIp !== undefined) return `public_ip ${selector.publicIp}`;
  const tags = Object.entries(selector.tag ?? {}).map(([k, v]) => `${k}=${v}`);
  return `${tags.length === 1 ? 'tag' : 'tags'} ${tags.join(', ')}`;
}

// --- instance metadata (IMDSv2), through @aws-sdk/ec2-metadata-service --------

/**
 * The endpoint as the AWS SDK picks it (an explicit override aside): the
 * AWS_EC2_METADATA_SERVICE_ENDPOINT base URL, else the address for
 * AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE (IPv4 by default). Like the SDK, only
 * the URL's origin counts; request paths replace any path it has.
 */
function imdsBase(io: ClaimIo): URL {
  const env = io.env ?? process.env;
  let text = io.imdsEndpoint ?? env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
  let source = io.imdsEndpoint !== undefined ? 'the metadata endpoint' : 'AWS_EC2_METADATA_SERVICE_ENDPOINT';
  if (text === undefined || text === '') {
    const mode = env.AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE || 'IPv4';
    text = IMDS_ENDPOINTS[mode];
    if (text === undefined) {
      throw new ClaimError(
        EXIT_USAGE,
        `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE is "${mode}"; expected ${Object.keys(IMDS_ENDPOINTS).join(' or ')}`,
      );
    }
    source = 'the default metadata endpoint';
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ClaimError(EXIT_USAGE, `${source} "${text}" is not a URL; expected e.g. "http://169.254.169.254"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ClaimError(EXIT_USAGE, `${source} "${text}" is not an http:// or https:// URL`);
  }
  return url;
}

/**
 * The AWS SDK's maintained IMDS client, configured to behave as claim needs:
 * the endpoint as resolved above (its own resolution ignores
 * AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE), IMDS_ATTEMPTS tries per request
 * with IMDS_RETRY_DELAY_MS doubling between them (a `@reboot` run can start
 * before the instance's network is up; it retries no answer, 5xx and 401,
 * not 400/403/404), each bounded by IMDS_TIMEOUT_MS. The session token is
 * fetched once here and sent by us, hence disableFetchToken.
 */
function metadataService(base: URL): MetadataService {
  return new MetadataService({
    endpoint: base.origin,
    httpOptions: { timeout: IMDS_TIMEOUT_MS },
    retries: IMDS_ATTEMPTS - 1,
    backoff: (failures) => (IMDS_RETRY_DELAY_MS / 1000) * 2 ** failures,
    tokenTtl: IMDS_TOKEN_TTL_SECONDS,
    disableFetchToken: true,
    ec2MetadataV1Disabled: false,
  });
}

async function imdsToken(imds: MetadataService, base: URL): Promise<string> {
  try {
    return (await imds.fetchMetadataToken()).trim();
  } catch (err) {
    throw imdsFailure(base, 'PUT', '/latest/api/token', err);
  }
}

async function imdsGet(imds: MetadataService, base: URL, path: string, token: string): Promise<string> {
  let value: string;
  try {
    // No leading slash: the client joins the endpoint's path ("/") and this
    // one with a plain "+", and "//latest/…" is refused by some IMDS proxies.
    value = (await imds.request(path.slice(1), { headers: { 'x-aws-ec2-metadata-token': token } })).trim();
  } catch (err) {
    throw imdsFailure(base, 'GET', path, err);
  }
  if (value === '') throw new ClaimError(EXIT_FAILURE, `instance metadata at ${base.origin} returned nothing for ${path}`);
  return value;
}

/**
 * The SDK's client reports every failure as an Error whose message embeds
 * the cause as text ("Error fetching metadata token: Error: connect
 * ECONNREFUSED …", "…: TimeoutError: …", "…status code 503"), without the
 * socket code or, for the token, the status. Read them back from the text;
 * anything unrecognised is passed on verbatim.
 */
function imdsFailure(base: URL, method: string, path: string, err: unknown): ClaimError {
  const text = err instanceof Error ? err.message : String(err);
  const status = /status code (\d{3})\b/.exec(text)?.[1];
  if (status !== undefined && Number(status) < 500) {
    return new ClaimError(
      EXIT_FAILURE,
      `instance metadata service at ${base.origin} answered HTTP ${status} to ${method} ${path}` +
        (status === '401' ? ' (session token refused)' : ''),
    );
  }
  const timedOut = /\bTimeoutError\b/.test(text);
  const errno = /\b(E[A-Z]{3,})\b/.exec(text)?.[1];
  const problem = timedOut
    ? `no answer within ${IMDS_TIMEOUT_MS} ms`
    : status !== undefined
      ? `HTTP ${status}`
      : errno !== undefined
        ? `${errno}: ${text.replace(/^.*?Error: /, '')}`
        : text;
  // The token PUT is the one request a container's extra hop breaks: its
  // reply is sent with the instance's hop limit, 1 by default.
  const hint =
    timedOut && method === 'PUT' ? '; in a container, the instance metadata PUT response hop limit must be at least 2' : '';
  return new ClaimError(
    EXIT_FAILURE,
    `cannot reach the instance metadata service at ${base.origin} (${method} ${path}: ${problem}, ${IMDS_ATTEMPTS} attempts): ` +
      `not on EC2? set AWS_EC2_METADATA_SERVICE_ENDPOINT to its base URL${hint}`,
  );
}
