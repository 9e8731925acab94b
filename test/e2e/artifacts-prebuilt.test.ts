import { chmodSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project } from '../helpers/project.js';
import { freePort, type SshFleet, sshRun, startSshHosts, type TestHost, withoutNpm } from '../helpers/sshd.js';

let fleet: SshFleet;
let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'slipway-prebuilt-'));
  chmodSync(dir, 0o755);
  fleet = await startSshHosts(1, { privateDirs: withoutNpm(dir) });
}, 120_000);
afterAll(async () => {
  await fleet?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const ssh = (h: TestHost, command: string) => sshRun(fleet, h, command);

describe('a prebuilt artifact', () => {
  let project: Project;
  const web1 = () => fleet.hosts[0];
  beforeAll(() => {
    project = makeProject({
      config: {
        knownHosts: fleet.knownHosts,
        artifacts: { store: { type: 'dir', path: path.join(dir, 'store') }, dependencies: 'prebuilt' },
      },
      hosts: [fleet.configHost(fleet.hosts[0], '/srv/hello')],
    });
  });
  afterAll(() => project?.cleanup());

  it('the host has node but no npm: an install there fails', async () => {
    expect((await ssh(web1(), 'node --version')).code).toBe(0);
    expect((await ssh(web1(), 'npm --version')).code).not.toBe(0);
    project.writeConfig({
      knownHosts: fleet.knownHosts,
      artifacts: { store: { type: 'dir', path: path.join(dir, 'store') } },
    });
    try {
      const deploy = await project.run(['deploy']);
      expect(deploy.code).toBe(1);
      expect(deploy.stderr).toMatch(/dependency install failed on web1/);
    } finally {
      project.writeConfig();
    }
  }, 180_000);

  it('deploys with nothing installed on the host, and the app runs with its dependencies', async () => {
    const deploy = await project.run(['deploy']);
    expect(deploy.code, deploy.stderr + deploy.stdout).toBe(0);
    expect(deploy.stderr + deploy.stdout).toMatch(/dependencies \(skipped\).*prebuilt, in the artifact/);
    const id = readlinkSync(path.join(web1().srvDir, 'hello/current')).replace('releases/', '');
    // Its own environment inside: the release records that it uses none of envs/ (purge may remove them).
    const meta = JSON.parse(
      readFileSync(path.join(web1().srvDir, 'hello/releases', id, '.slipway/release.json'), 'utf8'),
    );
    expect(meta.envKey).toBe('in-release');
    const port = await freePort();
    // server.js imports ms (a dependency): it answers only if node_modules came with the artifact.
    const run = await ssh(
      web1(),
      `cd /srv/hello/current && { PORT=${port} node server.js & pid=$!; }; ` +
        `for i in $(seq 50); do curl -fsS http://127.0.0.1:${port}/health && break; sleep 0.2; done; kill $pid`,
    );
    expect(run.out).toContain(id);
  }, 180_000);
});
