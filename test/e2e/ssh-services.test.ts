// Serving over SSH: the deploy user (login shell /bin/sh) installs the nginx site and supervisor program of
// a real nginx and a real supervisord that run as that user, restarts, health-checks and rolls back
// (health-checked in the rollback's own round trip), all through the remote scripts. The deploy root is
// outside the host's private /srv, so that the daemons (started by the harness in the machine's own mount
// namespace) see it too.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, releaseIdOf } from '../helpers/project.js';
import { type ServiceStack, startServiceStack } from '../helpers/services.js';
import { type SshFleet, startSshHosts } from '../helpers/sshd.js';

let fleet: SshFleet;
let stack: ServiceStack;
let project: Project;

beforeAll(async () => {
  fleet = await startSshHosts(1, { loginShell: '/bin/sh' });
  stack = await startServiceStack({ user: fleet.hosts[0].user });
  const h = fleet.hosts[0];
  project = makeProject({
    format: 'json',
    config: { knownHosts: fleet.knownHosts, ...stack.deployConfig() },
    hosts: [
      {
        name: 'web1',
        host: h.address,
        port: h.port,
        user: h.user,
        privateKey: fleet.clientKey,
        deployTo: path.join(stack.dir, 'deploy'),
      },
    ],
  });
});
afterAll(async () => {
  await stack?.stop();
  await fleet?.stop();
  project?.cleanup();
});

describe('services over SSH', () => {
  let first: string;

  it('deploy: the site and program are installed by the deploy user; the release answers through nginx', async () => {
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    first = releaseIdOf(result.stdout);
    expect(result.stdout).toMatch(/configs .*installed nginx, supervisor \(validated\)/);
    expect(result.stdout).toMatch(/health .*answered 200/);
    expect(await stack.answer(first)).toContain(`hello from release ${first}`);
    expect(readFileSync((stack.services.nginx as { site: string }).site, 'utf8')).toContain(
      `127.0.0.1:${stack.nginxPort}`,
    );
  });

  it(
    'check: without sudo, the config files, ' + 'nginx -t and supervisorctl work for the deploy user: ✓ each, exit 0',
    async () => {
      const result = await project.run(['check']);
      expect(result.code, result.stderr + result.stdout).toBe(0);
      for (const name of ['deploy root', 'config files', 'nginx -t', 'supervisorctl status'])
        expect(result.stdout).toMatch(new RegExp(`^✓ web1 +${name} `, 'm'));
      expect(result.stdout).not.toMatch(/^✗/m);
    },
  );

  it('a release that crashes at start is rolled back automatically: the first one answers again, exit 1', async () => {
    const original = readFileSync(path.join(project.dir, 'app/server.js'), 'utf8');
    project.commit({ 'server.js': `process.exit(3);\n${original}` }, 'crash at start');
    const result = await project.run(['deploy']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/rolled back automatically/);
    expect(await stack.answer(first)).toContain(`hello from release ${first}`);
    project.commit({ 'server.js': original }, 'fixed');
  });

  it('a second good release, then rollback: the first answers again; rollback:current: the second', async () => {
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr).toBe(0);
    const second = releaseIdOf(result.stdout);
    expect(await stack.answer(second)).toContain(`hello from release ${second}`);
    fleet.resetCounts(fleet.hosts[0]);
    const back = await project.run(['rollback']);
    expect(back.code, back.stderr).toBe(0);
    // The rollback's health check rides in its switch's round trip: still 2 exec requests.
    expect(back.stdout).toMatch(/switch .*answered 200 2 times in a row; hello RUNNING/);
    expect(fleet.counts(fleet.hosts[0]).execRequests).toBeLessThanOrEqual(2);
    expect(await stack.answer(first)).toContain(`hello from release ${first}`);
    const forward = await project.run(['rollback:current']);
    expect(forward.code, forward.stderr).toBe(0);
    expect(await stack.answer(second)).toContain(`hello from release ${second}`);
  });
});
