// deploy/kubernetes/: the pod resolves through the eipdns sidecar on
// 127.0.0.1:53, binds port 53 through the pod sysctl, is probed with
// `eipdns probe`, gets AWS credentials through its service account, and reads
// a ConfigMap the real loader accepts. No cluster here, so the manifests are
// parsed and the keys that matter checked.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { example, list, loadEmbedded, obj, root } from './helpers.js';

type Manifest = Record<string, unknown> & { kind: string; metadata: { name: string; annotations?: Record<string, string> } };

const files = readdirSync(join(root, 'deploy', 'kubernetes')).filter((f) => f.endsWith('.yaml'));
const manifests: Manifest[] = files.flatMap((f) =>
  parseAllDocuments(example(join('kubernetes', f))).map((d) => {
    expect(d.errors, f).toEqual([]);
    return d.toJSON() as Manifest;
  }),
);
const byKind = (kind: string): Manifest[] => manifests.filter((m) => m.kind === kind);
const [deployment] = byKind('Deployment');
const pod = obj(obj(obj(deployment?.spec, 'spec').template, 'template').spec, 'pod spec');
const sidecar = obj(
  list(pod.initContainers, 'initContainers').find((c) => obj(c, 'container').name === 'eipdns'),
  'the eipdns sidecar',
);
const PROBE = ['eipdns', 'probe', '--config', '/etc/eipdns/eipdns.yaml'];

describe('deploy/kubernetes', () => {
  it('kustomization lists every manifest', () => {
    const [kustomization] = byKind('Kustomization');
    expect([...(kustomization?.resources as string[])].sort()).toEqual(files.filter((f) => f !== 'kustomization.yaml').sort());
  });

  it('resolves the pod through 127.0.0.1 only (dnsPolicy None)', () => {
    expect(pod.dnsPolicy).toBe('None');
    expect(pod.dnsConfig).toEqual({ nameservers: ['127.0.0.1'] });
  });

  it('lets uid 65532 bind port 53 through the pod sysctl, with no capabilities', () => {
    expect(obj(pod.securityContext, 'securityContext').sysctls).toEqual([
      { name: 'net.ipv4.ip_unprivileged_port_start', value: '0' },
    ]);
    expect(sidecar.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
  });

  it('runs eipdns as a native sidecar, with `eipdns probe` as startup and liveness probes', () => {
    expect(sidecar.restartPolicy).toBe('Always');
    expect(sidecar.args).toEqual(['serve', '--config', '/etc/eipdns/eipdns.yaml']);
    expect(obj(obj(sidecar.livenessProbe, 'livenessProbe').exec, 'exec').command).toEqual(PROBE);
    expect(obj(obj(sidecar.startupProbe, 'startupProbe').exec, 'exec').command).toEqual(PROBE);
  });

  it('gets AWS credentials from its service account (IRSA annotation; Pod Identity needs none)', () => {
    const [account] = byKind('ServiceAccount');
    expect(pod.serviceAccountName).toBe(account?.metadata.name);
    expect(account?.metadata.annotations?.['eks.amazonaws.com/role-arn']).toMatch(/^arn:aws:iam::\d{12}:role\/.+/);
  });

  it('mounts the ConfigMap at /etc/eipdns, and its eipdns.yaml loads with the real loader', () => {
    const volume = list(pod.volumes, 'volumes').map((v) => obj(v, 'volume')).find((v) => v.name === 'eipdns-config');
    const mount = list(sidecar.volumeMounts, 'volumeMounts').map((m) => obj(m, 'mount'));
    expect(mount).toEqual([{ name: 'eipdns-config', mountPath: '/etc/eipdns', readOnly: true }]);
    const configMapName = obj(volume?.configMap, 'volume.configMap').name;
    const configMap = byKind('ConfigMap').find((m) => m.metadata.name === configMapName);
    const text = obj(configMap?.data, 'ConfigMap data')['eipdns.yaml'];
    expect(typeof text).toBe('string');
    const config = loadEmbedded(text as string);
    expect(config.listen).toEqual([{ host: '127.0.0.1', port: 53 }]);
    // Pods often cannot reach instance metadata: the region is set.
    expect(config.ec2.region).toBe('us-east-1');
  });
});
