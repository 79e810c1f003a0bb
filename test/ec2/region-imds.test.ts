// On an EC2 instance with nothing configured — no ec2.region, no AWS_REGION,
// no credentials in the environment or in ~/.aws — `serve` must still work:
// the SDK's default chains read the region (placement/region) and the
// instance profile's credentials from IMDSv2. The real server, built from
// YAML without ec2.region, against the fake IMDS (IMDSv2 enforced) and the EC2
// test server, which records each request's SigV4 credential scope.

import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { query } from '../helpers/dns-client.js';
import { INSTANCE_CREDENTIALS, startFakeImds, type FakeImds } from '../helpers/fake-imds.js';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { waitFor } from '../interop/tools.js';
import { startFakeEc2, type FakeEc2 } from './fake-ec2.js';

let fake: FakeEc2;
let imds: FakeImds;
let srv: TestServer | undefined;

beforeEach(async () => {
  fake = await startFakeEc2();
  imds = await startFakeImds({ region: 'eu-west-3' });
  const db = fake.addInstance({ privateIps: ['10.0.1.10'] }).instanceId;
  fake.associate(fake.addAddress({ publicIp: '198.51.100.10', tags: { Role: 'db' } }).allocationId, { instanceId: db });

  // Nothing but IMDS may answer: no region or credentials from the
  // environment, no shared config or credentials files, no container or
  // web-identity credentials.
  const nowhere = join(tempDir(), 'absent');
  for (const name of [
    'AWS_REGION',
    'AWS_DEFAULT_REGION',
    'AWS_PROFILE',
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'AWS_EC2_METADATA_DISABLED',
    'AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE',
    'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
    'AWS_CONTAINER_CREDENTIALS_FULL_URI',
    'AWS_WEB_IDENTITY_TOKEN_FILE',
    'AWS_ROLE_ARN',
  ]) {
    vi.stubEnv(name, undefined);
  }
  vi.stubEnv('AWS_CONFIG_FILE', `${nowhere}-config`);
  vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', `${nowhere}-credentials`);
  vi.stubEnv('AWS_EC2_METADATA_SERVICE_ENDPOINT', imds.url);
});

afterEach(async () => {
  await srv?.close();
  srv = undefined;
  vi.unstubAllEnvs();
  await Promise.all([fake.close(), imds.close()]);
});

/** The demo-like config, EC2 API at the fake, with no ec2.region. */
function yaml(): string {
  return `
listen: ["127.0.0.1:0"]
upstream: { servers: ["127.0.0.1:9"], timeout_ms: 300 }
ec2:
  endpoint: "${fake.url}"
  poll_interval_ms: 60000
  request_timeout_ms: 5000
zones:
  - name: internal
    records:
      db: { elastic_ip: { tag: { Role: db } } }
`;
}

async function answered(port: number): Promise<string[]> {
  return waitFor('db.internal to be answered from EC2', async () => {
    const r = await query(port, 'db.internal');
    return r.addresses.length > 0 ? r.addresses : undefined;
  });
}

describe('serve with no region configured', () => {
  it("signs its EC2 calls for the region IMDSv2 reports, with the instance profile's credentials", async () => {
    srv = await startTestServer(yaml());

    expect(await answered(srv.port)).toEqual(['10.0.1.10']);
    const [call] = fake.callsFor('DescribeAddresses');
    expect(call?.signature).toEqual({
      accessKeyId: INSTANCE_CREDENTIALS.accessKeyId,
      region: 'eu-west-3',
      service: 'ec2',
      sessionToken: INSTANCE_CREDENTIALS.sessionToken,
    });
    // Both came from IMDS, through its session-token flow (the fake refuses
    // any GET without a token it issued).
    const paths = imds.requests.filter((r) => r.status === 200).map((r) => r.path);
    expect(paths).toContain('/latest/meta-data/placement/region');
    expect(paths).toContain(`/latest/meta-data/iam/security-credentials/${imds.role.name}`);
    expect(imds.requests.filter((r) => r.method === 'GET').every((r) => r.token !== undefined)).toBe(true);
  });

  it('takes AWS_REGION over IMDS when it is set', async () => {
    vi.stubEnv('AWS_REGION', 'ap-south-1');
    srv = await startTestServer(yaml());

    expect(await answered(srv.port)).toEqual(['10.0.1.10']);
    expect(fake.callsFor('DescribeAddresses')[0]?.signature?.region).toBe('ap-south-1');
    expect(imds.requestsFor('/latest/meta-data/placement/region')).toEqual([]);
  });
});
