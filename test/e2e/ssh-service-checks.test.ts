// The service commands as a deploy user with sudo runs them without the helper (services.sudo, the mode
// README's "Preparing a server" keeps for a deploy user trusted as root; the helper's own check is in
// services-privilege.test.ts): nginx and supervisord run as root (as from the distribution's packages), the
// deploy user `slipway` reaches them only through README's broad sudo rules. Each host sees its own
// /etc/sudoers.d (those rules, or none) and, where said, an empty /var/lib/nginx (a host where nginx never
// ran): bind-mounted in its mount namespace only.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, releaseIdOf } from '../helpers/project.js';
import { deployRootIn, type ServiceStack, startServiceStack } from '../helpers/services.js';
import { DEPLOY_USER, freePort, type SshFleet, startSshHosts } from '../helpers/sshd.js';

/** README's "Preparing a server" rules for services.sudo without the helper, for the test's deploy user. */
const README_SUDO_RULES =
  `${DEPLOY_USER} ALL=(root) NOPASSWD: /usr/bin/cp, /usr/bin/mv, /usr/bin/rm, ` +
  `/usr/bin/mkdir, /usr/bin/touch, /usr/bin/ln, /usr/sbin/nginx, /usr/bin/supervisorctl\n`;

const scratch = mkdtempSync(path.join(tmpdir(), 'slipway-servicecheck-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A root-owned folder, as sudo and nginx want theirs; `files` are written 0440. */
function rootDir(name: string, files: Record<string, string> = {}): string {
  const dir = path.join(scratch, name);
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  for (const [file, text] of Object.entries(files)) writeFileSync(path.join(dir, file), text, { mode: 0o440 });
  return dir;
}

const liveIn = (root: string) => readlinkSync(path.join(root, 'current'));

let fleet: SshFleet;
let stack: ServiceStack;
beforeAll(async () => {
  fleet = await startSshHosts(1, {
    privateDirs: {
      '/etc/sudoers.d': rootDir('sudoers-readme', { slipway: README_SUDO_RULES }),
      '/var/lib/nginx': rootDir('var-lib-nginx'),
    },
  });
  stack = await startServiceStack();
});
afterAll(async () => {
  await stack?.stop();
  await fleet?.stop();
});

function sshHost(deployTo: string) {
  const h = fleet.hosts[0];
  return { name: 'web1', host: h.address, port: h.port, user: h.user, privateKey: fleet.clientKey, deployTo };
}

describe('with sudo, on a host where nginx never ran (item 6)', () => {
  let project: Project;
  let root: string;

  beforeAll(() => {
    root = deployRootIn(stack, 'deploy');
    project = makeProject({
      format: 'json',
      config: {
        knownHosts: fleet.knownHosts,
        ...stack.deployConfig(),
        services: { ...stack.services, sudo: 'sudo -n' },
      },
      hosts: [sshHost(root)],
    });
  });
  afterAll(() => project?.cleanup());

  it('the pre-switch nginx -t runs through services.sudo like the install: the deploy goes live', async () => {
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const id = releaseIdOf(result.stdout);
    expect(await stack.answer(id)).toContain(`hello from release ${id}`);
  });

  it(
    "check: with README's sudo rules, " +
      'nginx -t and supervisorctl pass as the deploy runs them: ✓ each, exit 0 (item 4)',
    async () => {
      const result = await project.run(['check']);
      expect(result.code, result.stderr + result.stdout).toBe(0);
      expect(result.stdout).toMatch(/^✓ web1 +deploy root +\S+ writable by slipway$/m);
      expect(result.stdout).toMatch(/^✓ web1 +sudo rules \(sudo -n\) +allow all \d+ commands a deploy runs$/m);
      expect(result.stdout).toMatch(/^✓ web1 +nginx -t +sudo -n \S+nginx -t .*configuration ok$/m);
      expect(result.stdout).toMatch(/^✓ web1 +supervisorctl status +.*supervisord answers$/m);
      expect(result.stdout).not.toMatch(/^✗/m);
    },
  );

  it(
    "a site nginx rejects: the failure is the nginx check's, " + "with nginx's own message, not a temp file's",
    async () => {
      const before = liveIn(root);
      writeFileSync(
        path.join(project.dir, 'templates/nginx.conf.hbs'),
        'server {\n    listen {{listen}};\n    bogus_directive on;\n}\n',
      );
      try {
        const result = await project.run(['deploy', '--json']);
        expect(result.code).toBe(1);
        expect(result.stderr).toContain('nginx check failed on web1');
        expect(result.stderr).toContain('nginx -t rejected the rendered site');
        expect(result.stderr).toMatch(/unknown directive "bogus_directive" in the rendered nginx\.conf:3/);
        expect(result.stderr).not.toMatch(/upload failed|nginx-check|\/tmp\//);
        expect(JSON.parse(result.stdout).tasks[0].hosts.web1.failedAt).toBe('nginx check');
        expect(liveIn(root)).toBe(before);
      } finally {
        cpSync(
          path.join(import.meta.dirname, '../../templates/nginx.conf.hbs'),
          path.join(project.dir, 'templates/nginx.conf.hbs'),
        );
      }
    },
  );
});

describe('purge, with the program running as runAs (item 24)', () => {
  let project: Project;
  let root: string;

  beforeAll(async () => {
    root = deployRootIn(stack, 'deploy-runas');
    const port = await freePort();
    project = makeProject({
      format: 'json',
      config: {
        knownHosts: fleet.knownHosts,
        application: 'runas',
        keepReleases: 1,
        port,
        runAs: 'nobody',
        services: {
          sudo: 'sudo -n',
          nginx: false,
          supervisor: { program: path.join(stack.supervisorConfD, 'runas.conf'), ctl: stack.supervisorctl },
        },
        healthcheck: {
          url: `http://127.0.0.1:${port}/health`,
          expectStatus: 200,
          expectBody: '{{releaseId}}',
          timeoutSeconds: 8,
        },
      },
      hosts: [sshHost(root)],
    });
    // The program runs as runAs (supervisord is root), so the deploy user cannot look into its /proc entry.
    rmSync(path.join(project.dir, 'templates/nginx.conf.hbs'));
    const template = path.join(project.dir, 'templates/supervisor.conf.hbs');
    writeFileSync(
      template,
      readFileSync(template, 'utf8').replace(
        '[program:{{application}}]\n',
        '[program:{{application}}]\nuser={{user}}\n',
      ),
    );
  });
  afterAll(() => project?.cleanup());

  const programPid = () =>
    Number(execFileSync('sh', ['-c', `${stack.supervisorctl} pid runas`], { encoding: 'utf8' }).trim());

  it('a release the program still works in (deploy killed before its restart) is kept by purge', async () => {
    const first = await project.run(['deploy']);
    expect(first.code, first.stderr + first.stdout).toBe(0);
    const a = releaseIdOf(first.stdout);
    const pid = programPid();
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^Uid:\s+65534\s/m);
    project.commit({ 'server.js': `// b\n${readFileSync(path.join(project.dir, 'app/server.js'), 'utf8')}` }, 'b');
    // A one-host switch is held back until the host's next command (TaskRun.hold): an afterSwitch hook on the
    // host sends it, so the deploy is killed after its switch went out, before the restart.
    project.writeConfig({ hooks: { afterSwitch: [{ name: 'switched', commands: ['true'] }] } });
    const killed = await project.run(['deploy'], { env: { SLIPWAY_FAULT: 'kill:before:restart' } });
    project.writeConfig();
    expect(killed.code).toBe(137); // the fault point SIGKILLs the deploy after its switch, before the restart
    expect(liveIn(root)).not.toBe(`releases/${a}`);
    expect(programPid()).toBe(pid);
    expect(readlinkSync(`/proc/${pid}/cwd`)).toBe(path.join(root, 'releases', a));

    const purge = await project.run(['purge']);
    expect(purge.code, purge.stderr + purge.stdout).toBe(0);
    expect(purge.stdout).toContain(`kept ${a}`);
    expect(readdirSync(path.join(root, 'releases'))).toContain(a);
    expect(readlinkSync(`/proc/${pid}/cwd`)).toBe(path.join(root, 'releases', a));
  });

  it('once the program restarted after the switch, the next deploy purges the old releases', async () => {
    project.commit({ 'server.js': `// c\n${readFileSync(path.join(project.dir, 'app/server.js'), 'utf8')}` }, 'c');
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const c = releaseIdOf(result.stdout);
    expect(readdirSync(path.join(root, 'releases'))).toEqual([c]);
    expect(readlinkSync(`/proc/${programPid()}/cwd`)).toBe(path.join(root, 'releases', c));
  });
});

describe('check on a host where nothing a deploy needs works (item 4)', () => {
  let denied: SshFleet;
  let project: Project;
  // Nothing of this may be created: the nearest existing folder is root's.
  const root = '/var/lib/slipway-check-nowhere/hello';
  const base = {
    nginx: { test: '/usr/sbin/nginx -t' },
    supervisor: { ctl: 'supervisorctl -s unix:///nonexistent/supervisor.sock' },
  };

  beforeAll(async () => {
    // The deploy user has no sudo rules at all; nginx is the distribution's (root's pid file).
    denied = await startSshHosts(1, { privateDirs: { '/etc/sudoers.d': rootDir('sudoers-none') } });
    const h = denied.hosts[0];
    project = makeProject({
      format: 'json',
      config: { knownHosts: denied.knownHosts, services: { ...base, sudo: 'sudo -n' } },
      hosts: [
        { name: 'web1', host: h.address, port: h.port, user: h.user, privateKey: denied.clientKey, deployTo: root },
      ],
    });
  });
  afterAll(async () => {
    await denied?.stop();
    project?.cleanup();
  });

  /** The ✗ line of a verdict and the fix: line under it. */
  const failed = (stdout: string, name: string) => {
    const verdict = new RegExp(`^✗ web1 +${name} +(.*)\n +fix: (.*)$`, 'm');
    return verdict.exec(stdout);
  };

  it(
    'with sudo: exit 1; ✗ and a fix for the deploy root, the sudo rules, ' +
      'nginx -t and supervisorctl; never ✓ beside a failure',
    async () => {
      const result = await project.run(['check']);
      expect(result.code).toBe(1);
      expect(failed(result.stdout, 'deploy root')?.[1]).toBe(`${root} NOT writable by slipway`);
      expect(failed(result.stdout, 'deploy root')?.[2]).toContain(`install -d -o slipway -g slipway ${root}`);
      const sudo = failed(result.stdout, 'sudo rules \\(sudo -n\\)');
      expect(sudo?.[1]).toMatch(/refuse \d+ of \d+ commands a deploy runs, e\.g\. cp .*sudo: a password is required/);
      expect(sudo?.[2]).toMatch(/README's sudo rules .*\/etc\/sudoers\.d\/hello/);
      expect(failed(result.stdout, 'nginx -t')?.[1]).toContain('sudo: a password is required');
      expect(failed(result.stdout, 'nginx -t')?.[2]).toContain('through sudo');
      expect(failed(result.stdout, 'supervisorctl status')?.[1]).toContain('sudo: a password is required');
      expect(result.stdout).not.toMatch(/^✓.*(NOT|refuse|denied|failed)/m);
      expect(result.stdout).toMatch(/^✗ web1 +check \(failed\)/m);
      expect(result.stderr).toContain('deploy root, sudo rules (sudo -n), nginx -t, supervisorctl status failed');
    },
  );

  it(
    'without sudo: ✗ the config files, ' +
      "nginx -t (root's pid file) and supervisorctl (no socket), each with its fix",
    async () => {
      project.writeConfig({ knownHosts: denied.knownHosts, services: base });
      const result = await project.run(['check']);
      expect(result.code).toBe(1);
      expect(failed(result.stdout, 'config files')?.[1]).toContain(
        'not writable: /etc/nginx/sites-available/hello.conf',
      );
      expect(failed(result.stdout, 'nginx -t')?.[1]).toMatch(/\/run\/nginx\.pid.*Permission denied/);
      expect(failed(result.stdout, 'nginx -t')?.[2]).toContain('services.sudo');
      expect(failed(result.stdout, 'supervisorctl status')?.[1]).toContain('no such file');
      expect(failed(result.stdout, 'supervisorctl status')?.[2]).toContain('supervisord is not running');
      expect(result.stdout).not.toMatch(/^✓.*(NOT|not writable|denied|failed|no such)/m);
    },
  );
});
