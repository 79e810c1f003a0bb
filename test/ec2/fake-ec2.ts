// A loopback EC2 endpoint that speaks the Query protocol the way
// @aws-sdk/client-ec2 really uses it (form-encoded POST in, namespaced XML out,
// EC2-style error documents), so discovery is tested through the real SDK:
// signing, retries, XML parsing and timeouts included. Only the handful of
// actions eipdns needs, with the semantics that matter to it.

import type http from 'node:http';
import { LoopbackHttp } from '../helpers/loopback-http.js';
import { randomUUID } from 'node:crypto';

export const EC2_NAMESPACE = 'http://ec2.amazonaws.com/doc/2016-11-15/';
export const EC2_API_VERSION = '2016-11-15';

export type Tags = Readonly<Record<string, string>>;

export interface FakeAssociation {
  readonly associationId: string;
  readonly instanceId?: string;
  readonly networkInterfaceId: string;
  readonly privateIpAddress: string;
  readonly networkInterfaceOwnerId: string;
}

export interface FakeAddress {
  readonly allocationId: string;
  readonly publicIp: string;
  readonly domain: 'vpc';
  tags: Tags;
  association?: FakeAssociation;
}

export type InstanceStateName = 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';

const STATE_CODES: Record<InstanceStateName, number> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

export interface FakeInstance {
  readonly instanceId: string;
  readonly reservationId: string;
  state: InstanceStateName;
  tags: Tags;
}

export interface FakeNetworkInterface {
  readonly networkInterfaceId: string;
  tags: Tags;
  /** Attached instance; the device index is the order of attachment. */
  instanceId?: string;
  deviceIndex?: number;
  /** The first one is the primary private IP. */
  privateIpAddresses: string[];
}

export type FaultKind = 'throttle' | '500' | 'auth' | 'forbidden' | 'hang' | 'reset';

export interface FaultSpec {
  /** Only requests for this action; every action when absent. */
  readonly action?: string;
  readonly fault: FaultKind;
  /** How many requests it affects; unlimited when absent. */
  readonly times?: number;
}

export interface CallRecord {
  readonly action: string;
  readonly params: Readonly<Record<string, string>>;
  /** The SDK's `amz-sdk-request` header, e.g. "attempt=2; max=3". */
  readonly attempt: string | undefined;
  /** Who signed the request and for where, from its SigV4 Authorization header. */
  readonly signature: SignatureInfo | undefined;
  readonly fault?: FaultKind;
}

/** The parts of a SigV4 signature a test can check (the signature itself is not verified). */
export interface SignatureInfo {
  readonly accessKeyId: string;
  /** The credential scope's region: the region the client resolved. */
  readonly region: string;
  readonly service: string;
  /** `x-amz-security-token`, sent with temporary credentials. */
  readonly sessionToken: string | undefined;
}

/** `AWS4-HMAC-SHA256 Credential=AKID/20261201/us-east-1/ec2/aws4_request, SignedHeaders=…, Signature=…` */
function signatureOf(req: http.IncomingMessage): SignatureInfo | undefined {
  const m = /Credential=([^/,\s]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/.exec(req.headers.authorization ?? '');
  if (m === null) return undefined;
  const token = req.headers['x-amz-security-token'];
  return { accessKeyId: m[1]!, region: m[2]!, service: m[3]!, sessionToken: Array.isArray(token) ? token[0] : token };
}

export interface FakeEc2Options {
  /**
   * Largest page DescribeInstances / DescribeNetworkInterfaces return, whatever
   * MaxResults asks for (EC2 may return fewer items than asked). Unlimited
   * when absent.
   */
  readonly pageSize?: number;
  readonly ownerId?: string;
}

/** An EC2 API error as the fake reports it (code and HTTP status as EC2 uses them). */
export class FakeEc2Error extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = 'FakeEc2Error';
  }
}

// ---------------------------------------------------------------------------
// XML: a tiny builder where text is always escaped and only builder output is
// trusted as markup, so a tag value can never inject elements.

interface Xml {
  readonly markup: string;
}

const NOTHING: Xml = { markup: '' };

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;',
  );
}

/** `<name>text</name>`, or nothing when the value is absent (EC2 omits unset fields). */
function field(name: string, value: string | number | boolean | undefined): Xml {
  if (value === undefined) return NOTHING;
  return { markup: `<${name}>${escapeXml(String(value))}</${name}>` };
}

function node(name: string, ...children: Xml[]): Xml {
  return { markup: `<${name}>${children.map((c) => c.markup).join('')}</${name}>` };
}

/** EC2 lists: `<fooSet><item>…</item></fooSet>`, `<fooSet/>` when empty. */
function itemSet(name: string, items: readonly Xml[][]): Xml {
  if (items.length === 0) return { markup: `<${name}/>` };
  return node(name, ...items.map((children) => node('item', ...children)));
}

function tagSet(tags: Tags): Xml {
  return itemSet(
    'tagSet',
    Object.entries(tags).map(([key, value]) => [field('key', key), field('value', value)]),
  );
}

function document(rootName: string, requestId: string, children: Xml[]): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<${rootName} xmlns="${EC2_NAMESPACE}">` +
    field('requestId', requestId).markup +
    children.map((c) => c.markup).join('') +
    `</${rootName}>`
  );
}

function errorDocument(code: string, message: string, requestId: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    node(
      'Response',
      node('Errors', node('Error', field('Code', code), field('Message', message))),
      field('RequestID', requestId),
    ).markup
  );
}

// ---------------------------------------------------------------------------
// Query-protocol parameters.

type Params = Readonly<Record<string, string>>;

/** `Prefix.1`, `Prefix.2`, … in numeric order. */
function listParam(params: Params, prefix: string): string[] {
  const out: Array<[number, string]> = [];
  const re = new RegExp(`^${prefix.replace(/\./g, '\\.')}\\.(\\d+)$`);
  for (const [key, value] of Object.entries(params)) {
    const m = re.exec(key);
    if (m?.[1] !== undefined) out.push([Number(m[1]), value]);
  }
  return out.sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}

interface Filter {
  readonly name: string;
  readonly values: readonly string[];
}

function filterParams(params: Params): Filter[] {
  const filters: Filter[] = [];
  for (let i = 1; params[`Filter.${i}.Name`] !== undefined; i++) {
    filters.push({ name: params[`Filter.${i}.Name`] as string, values: listParam(params, `Filter.${i}.Value`) });
  }
  return filters;
}

/** EC2 filter values accept `*` and `?` wildcards. */
function wildcardMatch(pattern: string, value: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(value);
}

/**
 * Filters AND together, a filter's values OR together. `lookup` returns the
 * resource's values for a filter name, or undefined for a name this resource
 * type does not support.
 */
function matchesFilters(
  filters: readonly Filter[],
  lookup: (name: string) => readonly string[] | undefined,
): boolean {
  return filters.every((f) => {
    const have = lookup(f.name);
    if (have === undefined) throw new FakeEc2Error('InvalidParameterValue', `The filter '${f.name}' is invalid`);
    return f.values.some((want) => have.some((v) => wildcardMatch(want, v)));
  });
}

/** Shared tag filters: `tag:Key` and `tag-key`. */
function tagFilterValues(name: string, tags: Tags): readonly string[] | undefined {
  if (name === 'tag-key') return Object.keys(tags);
  if (name.startsWith('tag:')) {
    const value = tags[name.slice(4)];
    return value === undefined ? [] : [value];
  }
  return undefined;
}

function boolParam(params: Params, name: string): boolean | undefined {
  const v = params[name];
  return v === undefined ? undefined : v === 'true';
}

function required(params: Params, name: string): string {
  const v = params[name];
  if (v === undefined || v === '') {
    throw new FakeEc2Error('MissingParameter', `The request must contain the parameter ${name}`);
  }
  return v;
}

// ---------------------------------------------------------------------------

interface HandlerResult {
  readonly xml: Xml[];
}

const FAULTS: Record<Exclude<FaultKind, 'hang' | 'reset'>, FakeEc2Error> = {
  throttle: new FakeEc2Error('RequestLimitExceeded', 'Request limit exceeded.', 503),
  '500': new FakeEc2Error('InternalError', 'An internal error has occurred', 500),
  auth: new FakeEc2Error(
    'AuthFailure',
    'AWS was not able to validate the provided access credentials',
    401,
  ),
  forbidden: new FakeEc2Error('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403),
};

export class FakeEc2 {
  readonly calls: CallRecord[] = [];
  readonly addresses = new Map<string, FakeAddress>();
  readonly instances = new Map<string, FakeInstance>();
  readonly networkInterfaces = new Map<string, FakeNetworkInterface>();
  /** Mutable so a test can start paging mid-way. */
  pageSize: number | undefined;

  private readonly http = new LoopbackHttp((req, res) => this.onRequest(req, res));
  private faults: Array<{ spec: FaultSpec; left: number }> = [];
  private readonly ownerId: string;
  private serial = 0;

  private constructor(options: FakeEc2Options) {
    this.pageSize = options.pageSize;
    this.ownerId = options.ownerId ?? '123456789012';
  }

  static async start(options: FakeEc2Options = {}): Promise<FakeEc2> {
    const fake = new FakeEc2(options);
    await fake.http.listen();
    return fake;
  }

  get url(): string {
    return `${this.http.origin}`;
  }

  /** Closes the server and every socket, including requests left hanging by a fault. */
  async close(): Promise<void> {
    await this.http.close();
  }

  // --- faults and call log -------------------------------------------------

  inject(spec: FaultSpec): void {
    this.faults.push({ spec, left: spec.times ?? Number.POSITIVE_INFINITY });
  }

  clearFaults(): void {
    this.faults = [];
  }

  callsFor(action: string): CallRecord[] {
    return this.calls.filter((c) => c.action === action);
  }

  clearCalls(): void {
    this.calls.length = 0;
  }

  // --- state helpers ---------------------------------------------------------

  private nextId(prefix: string): string {
    this.serial += 1;
    return `${prefix}-${this.serial.toString(16).padStart(17, '0')}`;
  }

  addAddress(init: { publicIp: string; allocationId?: string; tags?: Tags }): FakeAddress {
    const address: FakeAddress = {
      allocationId: init.allocationId ?? this.nextId('eipalloc'),
      publicIp: init.publicIp,
      domain: 'vpc',
      tags: { ...init.tags },
    };
    this.addresses.set(address.allocationId, address);
    return address;
  }

  addNetworkInterface(init: {
    privateIps: readonly string[];
    networkInterfaceId?: string;
    tags?: Tags;
    instanceId?: string;
  }): FakeNetworkInterface {
    if (init.privateIps.length === 0) throw new Error('an ENI needs a primary private IP');
    const eni: FakeNetworkInterface = {
      networkInterfaceId: init.networkInterfaceId ?? this.nextId('eni'),
      tags: { ...init.tags },
      privateIpAddresses: [...init.privateIps],
    };
    this.networkInterfaces.set(eni.networkInterfaceId, eni);
    if (init.instanceId !== undefined) this.attach(eni.networkInterfaceId, init.instanceId);
    return eni;
  }

  /** An instance with its primary ENI (device 0) holding `privateIps` (first = primary). */
  addInstance(init: {
    privateIps: readonly string[];
    instanceId?: string;
    reservationId?: string;
    state?: InstanceStateName;
    tags?: Tags;
    networkInterfaceId?: string;
  }): FakeInstance {
    const instance: FakeInstance = {
      instanceId: init.instanceId ?? this.nextId('i'),
      reservationId: init.reservationId ?? this.nextId('r'),
      state: init.state ?? 'running',
      tags: { ...init.tags },
    };
    this.instances.set(instance.instanceId, instance);
    this.addNetworkInterface({
      privateIps: init.privateIps,
      instanceId: instance.instanceId,
      ...(init.networkInterfaceId !== undefined ? { networkInterfaceId: init.networkInterfaceId } : {}),
    });
    return instance;
  }

  attach(networkInterfaceId: string, instanceId: string): void {
    const eni = this.eni(networkInterfaceId);
    this.instance(instanceId);
    if (eni.instanceId === instanceId) return;
    eni.deviceIndex = this.enisOf(instanceId).length;
    eni.instanceId = instanceId;
  }

  setInstanceState(instanceId: string, state: InstanceStateName): void {
    this.instance(instanceId).state = state;
  }

  setTags(resourceId: string, tags: Tags): void {
    const target =
      this.addresses.get(resourceId) ?? this.instances.get(resourceId) ?? this.networkInterfaces.get(resourceId);
    if (target === undefined) throw new Error(`no resource ${resourceId}`);
    target.tags = { ...tags };
  }

  /** Same rules as the AssociateAddress action; reassociation allowed unless told otherwise. */
  associate(
    allocationId: string,
    target: { instanceId?: string; networkInterfaceId?: string; privateIpAddress?: string; allowReassociation?: boolean },
  ): string {
    return this.doAssociate(allocationId, target);
  }

  disassociate(allocationId: string): void {
    const address = this.addresses.get(allocationId);
    if (address === undefined) throw new Error(`no address ${allocationId}`);
    delete address.association;
  }

  // --- lookups -------------------------------------------------------------

  private instance(instanceId: string): FakeInstance {
    const instance = this.instances.get(instanceId);
    if (instance === undefined) {
      throw new FakeEc2Error('InvalidInstanceID.NotFound', `The instance ID '${instanceId}' does not exist`);
    }
    return instance;
  }

  private eni(networkInterfaceId: string): FakeNetworkInterface {
    const eni = this.networkInterfaces.get(networkInterfaceId);
    if (eni === undefined) {
      throw new FakeEc2Error(
        'InvalidNetworkInterfaceID.NotFound',
        `The networkInterface ID '${networkInterfaceId}' does not exist`,
      );
    }
    return eni;
  }

  private enisOf(instanceId: string): FakeNetworkInterface[] {
    return [...this.networkInterfaces.values()]
      .filter((e) => e.instanceId === instanceId)
      .sort((a, b) => (a.deviceIndex ?? 0) - (b.deviceIndex ?? 0));
  }

  private primaryIp(instanceId: string): string | undefined {
    return this.enisOf(instanceId)[0]?.privateIpAddresses[0];
  }

  private addressAt(networkInterfaceId: string, privateIp: string): FakeAddress | undefined {
    for (const a of this.addresses.values()) {
      if (a.association?.networkInterfaceId === networkInterfaceId && a.association.privateIpAddress === privateIp) {
        return a;
      }
    }
    return undefined;
  }

  private doAssociate(
    allocationId: string,
    target: { instanceId?: string; networkInterfaceId?: string; privateIpAddress?: string; allowReassociation?: boolean },
  ): string {
    const address = this.addresses.get(allocationId);
    if (address === undefined) {
      throw new FakeEc2Error('InvalidAllocationID.NotFound', `The allocation ID '${allocationId}' does not exist`);
    }
    let eni: FakeNetworkInterface;
    if (target.networkInterfaceId !== undefined) {
      eni = this.eni(target.networkInterfaceId);
    } else if (target.instanceId !== undefined) {
      const enis = this.enisOf(this.instance(target.instanceId).instanceId);
      if (enis.length !== 1 || enis[0] === undefined) {
        throw new FakeEc2Error(
          'InvalidInstanceID',
          `There are multiple interfaces attached to instance '${target.instanceId}'. Please specify an interface ID for the operation instead.`,
        );
      }
      eni = enis[0];
    } else {
      throw new FakeEc2Error('MissingParameter', 'Either an instance ID or a network interface ID must be specified');
    }
    const privateIp = target.privateIpAddress ?? eni.privateIpAddresses[0];
    if (privateIp === undefined || !eni.privateIpAddresses.includes(privateIp)) {
      throw new FakeEc2Error(
        'InvalidParameterValue',
        `The specified private IP address '${String(target.privateIpAddress)}' is not assigned to '${eni.networkInterfaceId}'`,
      );
    }
    // EC2-VPC-only accounts reassociate unless the caller explicitly says false.
    if (address.association !== undefined && target.allowReassociation === false) {
      throw new FakeEc2Error('Resource.AlreadyAssociated', `resource ${allocationId} is already associated with associate-id ${address.association.associationId}`);
    }
    // A private IP holds one EIP: the one it had is released.
    const previous = this.addressAt(eni.networkInterfaceId, privateIp);
    if (previous !== undefined && previous !== address) delete previous.association;
    const associationId = this.nextId('eipassoc');
    address.association = {
      associationId,
      networkInterfaceId: eni.networkInterfaceId,
      privateIpAddress: privateIp,
      networkInterfaceOwnerId: this.ownerId,
      ...(eni.instanceId !== undefined ? { instanceId: eni.instanceId } : {}),
    };
    return associationId;
  }

  // --- HTTP ------------------------------------------------------------------

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const params: Record<string, string> = {};
      const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
      for (const [k, v] of query) params[k] = v;
      for (const [k, v] of new URLSearchParams(Buffer.concat(chunks).toString('utf8'))) params[k] = v;
      const action = params.Action ?? '';
      const attemptHeader = req.headers['amz-sdk-request'];
      const attempt = Array.isArray(attemptHeader) ? attemptHeader[0] : attemptHeader;
      const fault = this.takeFault(action);
      this.calls.push({ action, params, attempt, signature: signatureOf(req), ...(fault !== undefined ? { fault } : {}) });

      if (fault === 'hang') return; // never answered; close() destroys the socket
      if (fault === 'reset') {
        req.socket.destroy();
        return;
      }
      const requestId = randomUUID();
      try {
        if (fault !== undefined) throw FAULTS[fault];
        if (req.headers.authorization === undefined) {
          throw new FakeEc2Error('AuthFailure', 'AWS was not able to validate the provided access credentials', 401);
        }
        const body = this.dispatch(action, params);
        this.reply(res, 200, requestId, document(`${action}Response`, requestId, body.xml));
      } catch (err) {
        const e =
          err instanceof FakeEc2Error ? err : new FakeEc2Error('InternalError', 'An internal error has occurred', 500);
        this.reply(res, e.status, requestId, errorDocument(e.code, e.message, requestId));
      }
    });
  }

  private reply(res: http.ServerResponse, status: number, requestId: string, body: string): void {
    res.writeHead(status, {
      'content-type': 'text/xml;charset=UTF-8',
      'content-length': Buffer.byteLength(body),
      'x-amzn-requestid': requestId,
    });
    res.end(body);
  }

  private takeFault(action: string): FaultKind | undefined {
    for (const f of this.faults) {
      if (f.left > 0 && (f.spec.action === undefined || f.spec.action === action)) {
        f.left -= 1;
        return f.spec.fault;
      }
    }
    return undefined;
  }

  private dispatch(action: string, params: Params): HandlerResult {
    if (params.Version !== undefined && params.Version !== EC2_API_VERSION) {
      throw new FakeEc2Error('InvalidParameterValue', `Unsupported API version ${params.Version}`);
    }
    switch (action) {
      case 'DescribeAddresses':
        return this.describeAddresses(params);
      case 'AssociateAddress':
        return this.associateAddress(params);
      case 'DisassociateAddress':
        return this.disassociateAddress(params);
      case 'DescribeInstances':
        return this.describeInstances(params);
      case 'DescribeNetworkInterfaces':
        return this.describeNetworkInterfaces(params);
      default:
        throw new FakeEc2Error('InvalidAction', `The action ${action} is not valid for this web service.`);
    }
  }

  private describeAddresses(params: Params): HandlerResult {
    let selected = [...this.addresses.values()];
    const ids = listParam(params, 'AllocationId');
    if (ids.length > 0) {
      for (const id of ids) {
        if (!this.addresses.has(id)) {
          throw new FakeEc2Error('InvalidAllocationID.NotFound', `The allocation ID '${id}' does not exist`);
        }
      }
      selected = selected.filter((a) => ids.includes(a.allocationId));
    }
    const ips = listParam(params, 'PublicIp');
    if (ips.length > 0) {
      for (const ip of ips) {
        if (!selected.some((a) => a.publicIp === ip)) {
          throw new FakeEc2Error('InvalidAddress.NotFound', `Address '${ip}' not found.`);
        }
      }
      selected = selected.filter((a) => ips.includes(a.publicIp));
    }
    const filters = filterParams(params);
    selected = selected.filter((a) =>
      matchesFilters(filters, (name) => {
        const assoc = a.association;
        switch (name) {
          case 'allocation-id':
            return [a.allocationId];
          case 'public-ip':
            return [a.publicIp];
          case 'domain':
            return [a.domain];
          case 'association-id':
            return assoc ? [assoc.associationId] : [];
          case 'instance-id':
            return assoc?.instanceId !== undefined ? [assoc.instanceId] : [];
          case 'network-interface-id':
            return assoc ? [assoc.networkInterfaceId] : [];
          case 'private-ip-address':
            return assoc ? [assoc.privateIpAddress] : [];
          default:
            return tagFilterValues(name, a.tags);
        }
      }),
    );
    return {
      xml: [
        itemSet(
          'addressesSet',
          selected.map((a) => [
            field('publicIp', a.publicIp),
            field('allocationId', a.allocationId),
            field('domain', a.domain),
            field('instanceId', a.association?.instanceId),
            field('associationId', a.association?.associationId),
            field('networkInterfaceId', a.association?.networkInterfaceId),
            field('networkInterfaceOwnerId', a.association?.networkInterfaceOwnerId),
            field('privateIpAddress', a.association?.privateIpAddress),
            tagSet(a.tags),
            field('publicIpv4Pool', 'amazon'),
            field('networkBorderGroup', 'us-east-1'),
          ]),
        ),
      ],
    };
  }

  private associateAddress(params: Params): HandlerResult {
    let allocationId = params.AllocationId;
    if (allocationId === undefined && params.PublicIp !== undefined) {
      allocationId = [...this.addresses.values()].find((a) => a.publicIp === params.PublicIp)?.allocationId;
      if (allocationId === undefined) {
        throw new FakeEc2Error('InvalidAddress.NotFound', `Address '${params.PublicIp}' not found.`);
      }
    }
    if (allocationId === undefined) required(params, 'AllocationId');
    const allowReassociation = boolParam(params, 'AllowReassociation');
    const associationId = this.doAssociate(allocationId as string, {
      ...(params.InstanceId !== undefined ? { instanceId: params.InstanceId } : {}),
      ...(params.NetworkInterfaceId !== undefined ? { networkInterfaceId: params.NetworkInterfaceId } : {}),
      ...(params.PrivateIpAddress !== undefined ? { privateIpAddress: params.PrivateIpAddress } : {}),
      ...(allowReassociation !== undefined ? { allowReassociation } : {}),
    });
    return { xml: [field('return', true), field('associationId', associationId)] };
  }

  private disassociateAddress(params: Params): HandlerResult {
    let address: FakeAddress | undefined;
    if (params.AssociationId !== undefined) {
      address = [...this.addresses.values()].find((a) => a.association?.associationId === params.AssociationId);
      if (address === undefined) {
        throw new FakeEc2Error(
          'InvalidAssociationID.NotFound',
          `The association ID '${params.AssociationId}' does not exist`,
        );
      }
    } else {
      const ip = required(params, 'PublicIp');
      address = [...this.addresses.values()].find((a) => a.publicIp === ip);
      if (address === undefined) throw new FakeEc2Error('InvalidAddress.NotFound', `Address '${ip}' not found.`);
    }
    delete address.association;
    return { xml: [field('return', true)] };
  }

  /** MaxResults/NextToken paging; the token is an opaque offset bound to the action. */
  private page<T>(params: Params, action: string, items: readonly T[]): { items: T[]; nextToken?: string } {
    let start = 0;
    if (params.NextToken !== undefined) {
      const decoded = Buffer.from(params.NextToken, 'base64url').toString('utf8');
      const m = /^(\w+):(\d+)$/.exec(decoded);
      if (m === null || m[1] !== action || Number(m[2]) > items.length) {
        throw new FakeEc2Error('InvalidPaginationToken', 'The specified pagination token is not valid or is expired.');
      }
      start = Number(m[2]);
    }
    let size = Number.POSITIVE_INFINITY;
    if (params.MaxResults !== undefined) {
      const max = Number(params.MaxResults);
      if (!Number.isInteger(max) || max < 5 || max > 1000) {
        throw new FakeEc2Error(
          'InvalidParameterValue',
          `Value ( ${params.MaxResults} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`,
        );
      }
      size = max;
    }
    if (this.pageSize !== undefined) size = Math.min(size, this.pageSize);
    const end = Math.min(items.length, start + size);
    const out: { items: T[]; nextToken?: string } = { items: items.slice(start, end) };
    if (end < items.length) out.nextToken = Buffer.from(`${action}:${end}`).toString('base64url');
    return out;
  }

  private describeInstances(params: Params): HandlerResult {
    const ids = listParam(params, 'InstanceId');
    if (ids.length > 0 && params.MaxResults !== undefined) {
      throw new FakeEc2Error(
        'InvalidParameterCombination',
        'The parameter instancesSet cannot be used with the parameter maxResults',
      );
    }
    for (const id of ids) this.instance(id);
    const filters = filterParams(params);
    const selected = [...this.instances.values()].filter(
      (i) =>
        (ids.length === 0 || ids.includes(i.instanceId)) &&
        matchesFilters(filters, (name) => {
          switch (name) {
            case 'instance-id':
              return [i.instanceId];
            case 'instance-state-name':
              return [i.state];
            case 'private-ip-address': {
              const ip = this.primaryIp(i.instanceId);
              return ip === undefined ? [] : [ip];
            }
            default:
              return tagFilterValues(name, i.tags);
          }
        }),
    );
    const { items, nextToken } = this.page(params, 'DescribeInstances', selected);
    // Consecutive instances of one reservation share a reservationSet item, as EC2 groups them.
    const reservations: FakeInstance[][] = [];
    for (const i of items) {
      const last = reservations[reservations.length - 1];
      if (last?.[0]?.reservationId === i.reservationId) last.push(i);
      else reservations.push([i]);
    }
    return {
      xml: [
        itemSet(
          'reservationSet',
          reservations.map((group) => [
            field('reservationId', group[0]?.reservationId),
            field('ownerId', this.ownerId),
            itemSet('groupSet', []),
            itemSet('instancesSet', group.map((i) => this.instanceXml(i))),
          ]),
        ),
        field('nextToken', nextToken),
      ],
    };
  }

  private instanceXml(i: FakeInstance): Xml[] {
    const enis = this.enisOf(i.instanceId);
    const primary = enis[0]?.privateIpAddresses[0];
    return [
      field('instanceId', i.instanceId),
      field('imageId', 'ami-0123456789abcdef0'),
      node('instanceState', field('code', STATE_CODES[i.state]), field('name', i.state)),
      field('privateDnsName', primary === undefined ? undefined : `ip-${primary.replace(/\./g, '-')}.ec2.internal`),
      field('instanceType', 't3.micro'),
      field('privateIpAddress', primary),
      tagSet(i.tags),
      itemSet(
        'networkInterfaceSet',
        enis.map((e) => [
          field('networkInterfaceId', e.networkInterfaceId),
          field('ownerId', this.ownerId),
          field('status', 'in-use'),
          field('privateIpAddress', e.privateIpAddresses[0]),
          node(
            'attachment',
            field('attachmentId', `eni-attach-${e.networkInterfaceId.slice(4)}`),
            field('deviceIndex', e.deviceIndex ?? 0),
            field('status', 'attached'),
          ),
          this.associationXml(e.networkInterfaceId, e.privateIpAddresses[0]),
          this.privateIpSetXml(e),
        ]),
      ),
    ];
  }

  /** The EIP on one private IP, as Describe{Instances,NetworkInterfaces} nest it. */
  private associationXml(networkInterfaceId: string, privateIp: string | undefined): Xml {
    const address = privateIp === undefined ? undefined : this.addressAt(networkInterfaceId, privateIp);
    if (address === undefined) return NOTHING;
    return node(
      'association',
      field('publicIp', address.publicIp),
      field('ipOwnerId', 'amazon'),
      field('allocationId', address.allocationId),
      field('associationId', address.association?.associationId),
    );
  }

  private privateIpSetXml(e: FakeNetworkInterface): Xml {
    return itemSet(
      'privateIpAddressesSet',
      e.privateIpAddresses.map((ip, n) => [
        field('privateIpAddress', ip),
        field('primary', n === 0),
        this.associationXml(e.networkInterfaceId, ip),
      ]),
    );
  }

  private describeNetworkInterfaces(params: Params): HandlerResult {
    const ids = listParam(params, 'NetworkInterfaceId');
    for (const id of ids) this.eni(id);
    const filters = filterParams(params);
    const selected = [...this.networkInterfaces.values()].filter(
      (e) =>
        (ids.length === 0 || ids.includes(e.networkInterfaceId)) &&
        matchesFilters(filters, (name) => {
          switch (name) {
            case 'network-interface-id':
              return [e.networkInterfaceId];
            case 'attachment.instance-id':
              return e.instanceId === undefined ? [] : [e.instanceId];
            case 'private-ip-address':
              return e.privateIpAddresses;
            default:
              return tagFilterValues(name, e.tags);
          }
        }),
    );
    const { items, nextToken } = this.page(params, 'DescribeNetworkInterfaces', selected);
    return {
      xml: [
        itemSet(
          'networkInterfaceSet',
          items.map((e) => [
            field('networkInterfaceId', e.networkInterfaceId),
            field('subnetId', 'subnet-0123456789abcdef0'),
            field('vpcId', 'vpc-0123456789abcdef0'),
            field('ownerId', this.ownerId),
            field('status', e.instanceId === undefined ? 'available' : 'in-use'),
            field('privateIpAddress', e.privateIpAddresses[0]),
            field('interfaceType', 'interface'),
            e.instanceId === undefined
              ? NOTHING
              : node(
                  'attachment',
                  field('attachmentId', `eni-attach-${e.networkInterfaceId.slice(4)}`),
                  field('instanceId', e.instanceId),
                  field('instanceOwnerId', this.ownerId),
                  field('deviceIndex', e.deviceIndex ?? 0),
                  field('status', 'attached'),
                ),
            this.associationXml(e.networkInterfaceId, e.privateIpAddresses[0]),
            tagSet(e.tags),
            this.privateIpSetXml(e),
          ]),
        ),
        field('nextToken', nextToken),
      ],
    };
  }
}

export function startFakeEc2(options: FakeEc2Options = {}): Promise<FakeEc2> {
  return FakeEc2.start(options);
}
