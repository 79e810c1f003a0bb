// A loopback EC2 instance metadata service with IMDSv2 enforced (as on an
// instance launched with HttpTokens=required), so the token flow is tested
// for real: a GET without a valid session token is refused, never answered.
//
// Usage:
//   const imds = await startFakeImds({ instanceId: 'i-0abc…', region: 'us-east-1' });
//   ... point the code under test at imds.url ...
//   await imds.close();

import type http from 'node:http';
import { LoopbackHttp } from './loopback-http.js';
import { randomBytes } from 'node:crypto';

export const TOKEN_PATH = '/latest/api/token';
export const TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';
export const TOKEN_HEADER = 'x-aws-ec2-metadata-token';

export interface FakeImdsOptions {
  readonly instanceId?: string;
  readonly region?: string;
  /**
   * Never answer the token PUT: what a container sees when the instance's
   * PUT response hop limit is 1 and the reply dies one hop short.
   */
  readonly hangTokenRequests?: boolean;
  /** Answer the first N requests with 503, as an instance still booting might. */
  readonly unavailableFirst?: number;
  /**
   * The instance profile's role and the temporary credentials IMDS hands out
   * for it (what the SDK's default credential chain ends with on EC2).
   * Default: a role "eipdns-test-role" with INSTANCE_CREDENTIALS.
   */
  readonly role?: { readonly name: string; readonly credentials: InstanceCredentials };
}

export interface InstanceCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
}

export const INSTANCE_CREDENTIALS: InstanceCredentials = {
  accessKeyId: 'ASIAFAKEIMDSROLE0001',
  secretAccessKey: 'fake-imds-secret',
  sessionToken: 'fake-imds-session-token',
};

const CREDENTIALS_PATH = '/latest/meta-data/iam/security-credentials/';

export interface ImdsRequest {
  readonly method: string;
  readonly path: string;
  /** The TTL header of a token request, as sent. */
  readonly ttl: string | undefined;
  /** The session token header, as sent. */
  readonly token: string | undefined;
  /** What the fake answered; undefined when it did not answer. */
  readonly status: number | undefined;
}

export class FakeImds {
  readonly requests: ImdsRequest[] = [];
  readonly instanceId: string;
  readonly region: string;
  readonly role: { readonly name: string; readonly credentials: InstanceCredentials };
  private readonly tokens = new Set<string>();
  private readonly http = new LoopbackHttp((req, res) => this.onRequest(req, res));

  private constructor(private readonly options: FakeImdsOptions) {
    this.instanceId = options.instanceId ?? 'i-0123456789abcdef0';
    this.region = options.region ?? 'us-east-1';
    this.role = options.role ?? { name: 'eipdns-test-role', credentials: INSTANCE_CREDENTIALS };
  }

  static async start(options: FakeImdsOptions = {}): Promise<FakeImds> {
    const fake = new FakeImds(options);
    await fake.http.listen();
    return fake;
  }

  /** Base URL in the form AWS_EC2_METADATA_SERVICE_ENDPOINT takes. */
  get url(): string {
    return `${this.http.origin}/`;
  }

  /** Requests for one path, e.g. "/latest/meta-data/instance-id". */
  requestsFor(path: string): ImdsRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  /** Closes the server and every socket, including token requests left hanging. */
  async close(): Promise<void> {
    await this.http.close();
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const ttl = header(req, TTL_HEADER);
    const token = header(req, TOKEN_HEADER);
    const record = (status: number | undefined): void => {
      this.requests.push({ method, path, ttl, token, status });
    };
    // Drain the body so keep-alive connections stay usable.
    req.resume();
    req.on('end', () => {
      if (this.requests.length < (this.options.unavailableFirst ?? 0)) return reply(res, record, 503, '');
      if (path === TOKEN_PATH) {
        if (method !== 'PUT') return reply(res, record, 405, '');
        if (this.options.hangTokenRequests === true) return record(undefined);
        // IMDS rejects a missing or out-of-range TTL rather than defaulting it.
        const seconds = Number(ttl);
        if (ttl === undefined || !Number.isInteger(seconds) || seconds < 1 || seconds > 21600) {
          return reply(res, record, 400, '');
        }
        const issued = randomBytes(24).toString('base64');
        this.tokens.add(issued);
        return reply(res, record, 200, issued, { [TTL_HEADER]: String(seconds) });
      }
      if (method !== 'GET') return reply(res, record, 405, '');
      if (token === undefined || !this.tokens.has(token)) return reply(res, record, 401, '');
      const body = this.metadata(path);
      if (body === undefined) return reply(res, record, 404, '');
      return reply(res, record, 200, body);
    });
  }

  private metadata(path: string): string | undefined {
    switch (path) {
      case '/latest/meta-data/instance-id':
        return this.instanceId;
      case '/latest/meta-data/placement/region':
        return this.region;
      case CREDENTIALS_PATH:
        return this.role.name;
      case `${CREDENTIALS_PATH}${this.role.name}`: {
        const c = this.role.credentials;
        // The document IMDS serves, valid for the next six hours.
        return JSON.stringify({
          Code: 'Success',
          LastUpdated: new Date().toISOString(),
          Type: 'AWS-HMAC',
          AccessKeyId: c.accessKeyId,
          SecretAccessKey: c.secretAccessKey,
          Token: c.sessionToken,
          Expiration: new Date(Date.now() + 6 * 3600_000).toISOString(),
        });
      }
      default:
        return undefined;
    }
  }
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function reply(
  res: http.ServerResponse,
  record: (status: number) => void,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  record(status);
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

export function startFakeImds(options: FakeImdsOptions = {}): Promise<FakeImds> {
  return FakeImds.start(options);
}
