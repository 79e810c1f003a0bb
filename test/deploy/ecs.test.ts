// deploy/ecs/task-definition.json (EC2 launch type): the app resolves through
// eipdns via dnsServers, which bridge mode allows (awsvpc, and so Fargate,
// does not: containers-roadmap#1123); the config travels in the task
// definition and a one-shot container writes it where eipdns reads it.
// docker/smoke.sh runs that writer for real.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { list, loadEmbedded, obj, root } from './helpers.js';

const task = obj(JSON.parse(readFileSync(join(root, 'deploy', 'ecs', 'task-definition.json'), 'utf8')), 'task definition');
const containers = list(task.containerDefinitions, 'containerDefinitions').map((c) => obj(c, 'container'));
const named = (name: string): Record<string, unknown> => obj(containers.find((c) => c.name === name), name);
const eipdns = named('eipdns');
const writer = named('eipdns-config');
const app = named('app');

describe('deploy/ecs/task-definition.json', () => {
  it('is for the EC2 launch type in bridge mode, where dnsServers is allowed', () => {
    expect(task.requiresCompatibilities).toEqual(['EC2']);
    expect(task.networkMode).toBe('bridge');
  });

  it('points the app at eipdns (dnsServers: the docker bridge, where eipdns publishes port 53) once it is healthy', () => {
    expect(app.dnsServers).toEqual(['172.17.0.1']);
    expect(app.dependsOn).toEqual([{ containerName: 'eipdns', condition: 'HEALTHY' }]);
    expect(eipdns.portMappings).toEqual([
      { containerPort: 53, hostPort: 53, protocol: 'udp' },
      { containerPort: 53, hostPort: 53, protocol: 'tcp' },
    ]);
  });

  it('runs eipdns as uid 65532, read-only, no capabilities, probed with `eipdns probe`', () => {
    expect(eipdns.command).toEqual(['serve', '--config', '/etc/eipdns/eipdns.yaml']);
    expect(eipdns.user).toBe('65532:65532');
    expect(eipdns.readonlyRootFilesystem).toBe(true);
    expect(obj(obj(eipdns.linuxParameters, 'linuxParameters').capabilities, 'capabilities').drop).toEqual(['ALL']);
    expect(obj(eipdns.healthCheck, 'healthCheck').command).toEqual(['CMD', 'eipdns', 'probe', '--config', '/etc/eipdns/eipdns.yaml']);
    expect(task.taskRoleArn).toMatch(/^arn:aws:iam::\d{12}:role\/.+/);
  });

  it('writes the embedded config where eipdns reads it, before eipdns starts; the real loader accepts it', () => {
    expect(eipdns.dependsOn).toEqual([{ containerName: 'eipdns-config', condition: 'SUCCESS' }]);
    expect(writer.essential).toBe(false);
    expect(writer.mountPoints).toEqual([{ sourceVolume: 'eipdns-config', containerPath: '/etc/eipdns' }]);
    expect(eipdns.mountPoints).toEqual([{ sourceVolume: 'eipdns-config', containerPath: '/etc/eipdns', readOnly: true }]);
    expect(writer.entryPoint).toEqual(['node', '-e']);
    expect(list(writer.command, 'command')[0]).toContain("writeFileSync('/etc/eipdns/eipdns.yaml', process.env.EIPDNS_CONFIG");
    const env = list(writer.environment, 'environment').map((e) => obj(e, 'env'));
    const text = env.find((e) => e.name === 'EIPDNS_CONFIG')?.value;
    expect(typeof text).toBe('string');
    const config = loadEmbedded(text as string);
    expect(config.listen).toEqual([{ host: '0.0.0.0', port: 53 }]);
    // Queries from the app arrive from the docker bridge range.
    expect(config.acl.allow).toContain('172.16.0.0/12');
  });
});
