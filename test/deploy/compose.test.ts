// deploy/compose.yaml: the app shares eipdns's network namespace and resolves
// through it; eipdns runs hardened with a config the real loader accepts.
// docker/smoke.sh runs the same arrangement for real (docker run --network
// container:<eipdns>).

import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { example, loadEmbedded, obj } from './helpers.js';

const compose = obj(parse(example('compose.yaml')), 'compose.yaml');
const services = obj(compose.services, 'services');
const eipdns = obj(services.eipdns, 'services.eipdns');
const app = obj(services.app, 'services.app');

describe('deploy/compose.yaml', () => {
  it("puts the app in eipdns's network namespace, started once eipdns is healthy", () => {
    expect(app.network_mode).toBe('service:eipdns');
    expect(app.depends_on).toEqual({ eipdns: { condition: 'service_healthy' } });
    // The namespace's resolver (shared with the app) is eipdns.
    expect(eipdns.dns).toEqual(['127.0.0.1']);
  });

  it('runs eipdns from the image, hardened: uid 65532, read-only, no capabilities, no new privileges', () => {
    expect(eipdns.build).toEqual({ context: '..', dockerfile: 'docker/Dockerfile' });
    expect(eipdns.command).toEqual(['serve', '--config', '/etc/eipdns/eipdns.yaml']);
    expect(eipdns.user).toBe('65532:65532');
    expect(eipdns.read_only).toBe(true);
    expect(eipdns.cap_drop).toEqual(['ALL']);
    expect(eipdns.security_opt).toEqual(['no-new-privileges:true']);
  });

  it('mounts an embedded config at /etc/eipdns/eipdns.yaml that the real loader accepts, on loopback port 53', () => {
    expect(eipdns.configs).toEqual([{ source: 'eipdns', target: '/etc/eipdns/eipdns.yaml' }]);
    const text = obj(obj(compose.configs, 'configs').eipdns, 'configs.eipdns').content;
    expect(typeof text).toBe('string');
    const config = loadEmbedded(text as string);
    expect(config.listen).toEqual([{ host: '127.0.0.1', port: 53 }]);
    expect(config.upstream.servers).toEqual([{ host: '169.254.169.253', port: 53 }]);
    expect(config.acl.allow).toEqual(['127.0.0.0/8']);
  });
});
