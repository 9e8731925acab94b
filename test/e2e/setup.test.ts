// `setup` on a fresh host, then `check`: the sshd test host gets its own copy of /etc, an empty /home and an
// empty /usr/local/sbin (bind-mounted in its mount namespace only), so setup really creates the deploy user
// `deploy` there, authorizes its own key (sshd reads ~/.ssh/authorized_keys), and installs the helper, its
// config and its sudo rule as root, while the machine's own /etc stays untouched. nginx and supervisord run
// as root inside that host's namespace (they see its users and its /srv), with their include dirs removed
// for setup to make. After setup, `check` is all ✓ and a real deploy serves the app through the helper;
// setup again changes nothing; then one thing at a time is broken and `check` names it with its fix.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, releaseIdOf, ROOT } from '../helpers/project.js';
import { type ServiceStack, startServiceStack } from '../helpers/services.js';
import { DEPLOY_USER, ensureDeployUser, type SshFleet, startSshHosts } from '../helpers/sshd.js';

const HELPER = '/usr/local/sbin/slipway-services';

describe('setup on a fresh host as root, then check and a deploy', () => {
  let scratch: string;
  let etc: string;
  let sbin: string;
  let fleet: SshFleet;
  let stack: ServiceStack;
  let project: Project;
  let deployKey: string;

  /** The host's own view of a user: its /etc/passwd copy. */
  const passwdEntry = (user: string) =>
    readFileSync(path.join(etc, 'passwd'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${user}:`));
  const srv = () => fleet.hosts[0].srvDir;

  beforeAll(async () => {
    scratch = mkdtempSync(path.join(tmpdir(), 'slipway-setup-'));
    etc = path.join(scratch, 'etc');
    // The harness's user first (startSshHosts would make it after the copy): setup.user logs in as it below.
    ensureDeployUser('/bin/sh');
    execFileSync('cp', ['-a', '/etc', etc]);
    // Another test's helper config may be on the machine meanwhile: this host has none.
    rmSync(path.join(etc, 'slipway'), { recursive: true, force: true });
    sbin = path.join(scratch, 'sbin');
    const home = path.join(scratch, 'home');
    for (const d of [sbin, home]) mkdirSync(d, { mode: 0o755 });
    fleet = await startSshHosts(1, {
      privateDirs: { '/etc': etc, '/home': home, '/usr/local/sbin': sbin },
      userAuthorizedKeys: true,
    });
    stack = await startServiceStack({ mountNamespaceOf: fleet.hosts[0].pid });
    // setup makes the include dirs (nginx's `include sites-enabled/*.conf` matches nothing meanwhile).
    for (const d of [stack.sitesAvailable, stack.sitesEnabled, stack.supervisorConfD]) rmSync(d, { recursive: true });
    // The deploy user's own key: it can log in only once setup authorized it (root logs in with the fleet's).
    deployKey = path.join(scratch, 'deploy_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'deployer@laptop', '-f', deployKey]);
    const h = fleet.hosts[0];
    const health = stack.deployConfig().healthcheck;
    project = makeProject({
      format: 'json',
      config: {
        knownHosts: fleet.knownHosts,
        port: stack.appPort,
        runAs: 'deploy',
        vars: { listen: `127.0.0.1:${stack.nginxPort}`, logDir: '/srv/log/hello' },
        shared: { dirs: ['logs'], files: ['config/local.json'] },
        services: { helper: HELPER },
        healthcheck: health,
        setup: {
          user: 'root',
          privateKey: fleet.clientKey,
          authorizedKeys: [`${deployKey}.pub`],
          helper: {
            site: path.join(stack.sitesAvailable, 'hello.conf'),
            enabled: path.join(stack.sitesEnabled, 'hello.conf'),
            programFile: path.join(stack.supervisorConfD, 'hello.conf'),
            supervisorctl: stack.supervisorctl,
            nginxTest: stack.nginxTest,
            nginxReload: stack.nginxReload,
            stateDir: '/srv/state/hello',
          },
        },
      },
      hosts: [
        { name: 'web1', host: h.address, port: h.port, user: 'deploy', privateKey: deployKey, deployTo: '/srv/hello' },
      ],
    });
    writeFileSync(path.join(project.dir, '.env.local.example'), 'API_TOKEN=\n');
    writeFileSync(path.join(project.dir, '.env.local'), 'API_TOKEN=token-for-the-setup-test\n');
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
    await fleet?.stop();
    project?.cleanup();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('setup refuses before touching any host (exit 2): services without the helper, a key file missing or private', async () => {
    const config = JSON.parse(readFileSync(project.configFile, 'utf8'));
    try {
      for (const [extra, message] of [
        [{ services: { sudo: 'sudo -n' } }, 'setup installs the root-owned helper for nginx and supervisor'],
        [
          { setup: { ...config.setup, authorizedKeys: ['/nonexistent.pub'] } },
          'public key file /nonexistent.pub not found',
        ],
        [{ setup: { ...config.setup, authorizedKeys: [deployKey] } }, `setup: ${deployKey} is a private key`],
      ] as const) {
        project.writeConfig(extra);
        const result = await project.run(['setup']);
        expect(result.code, result.stderr).toBe(2);
        expect(result.stderr).toContain(message);
        expect(result.stdout).not.toContain('web1');
      }
    } finally {
      project.writeConfig();
    }
    expect(passwdEntry('deploy')).toBeUndefined();
  }, 120_000);

  it('check before setup: ✗ ssh, the deploy user cannot log in; the fix says to run setup', async () => {
    const result = await project.run(['check']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /^✗ web1 +ssh +cannot connect to deploy@.*authentication.*\n +fix: deploy or its key is not set up there: run `setup`/m,
    );
    // --dry-run prints the script and what it would do, and changes nothing.
    const dry = await project.run(['setup', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('with on stdin: the helper (');
    expect(dry.stdout).toMatch(/· web1 +setup \(dry-run\) .* would prepare it as root, running the script above/);
    expect(passwdEntry('deploy')).toBeUndefined();
  }, 120_000);

  it('setup creates the user, its key, the deploy root, shared items, helper, config, sudo rule, include dirs', async () => {
    expect(passwdEntry('deploy')).toBeUndefined();
    const result = await project.run(['setup']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    for (const change of [
      'user deploy created',
      /authorized key ssh-ed25519 …\S+ deployer@laptop added/,
      'deploy root /srv/hello created',
      'deploy root mark /srv/hello/.slipway-root written',
      'shared dir /srv/hello/shared/logs created',
      'shared dir /srv/hello/shared/config created',
      'shared file /srv/hello/shared/config/local.json created empty (0600)',
      `helper ${HELPER} installed`,
      'helper config /etc/slipway/hello.conf installed',
      'sudo rule /etc/sudoers.d/slipway-hello installed',
      `folder ${stack.sitesAvailable} created`,
      `folder ${stack.supervisorConfD} created`,
      'folder /srv/log/hello created',
    ])
      expect(result.stdout).toMatch(typeof change === 'string' ? `changed: ${change}` : change);
    expect(result.stdout).toMatch(/✓ web1 +setup .* \d+ changes \(\d+ checked\)/);
    // On the host: the user (in its /etc only), the helper as shipped, root's 0440 sudo rule for exactly the helper.
    const uid = Number(passwdEntry('deploy')!.split(':')[2]);
    expect(statSync(path.join(srv(), 'hello')).uid).toBe(uid);
    expect(readFileSync(path.join(sbin, 'slipway-services'))).toEqual(
      readFileSync(path.join(ROOT, 'server/slipway-services')),
    );
    expect(statSync(path.join(sbin, 'slipway-services')).mode & 0o7777).toBe(0o755);
    const rule = path.join(etc, 'sudoers.d/slipway-hello');
    expect(statSync(rule).mode & 0o7777).toBe(0o440);
    expect(readFileSync(rule, 'utf8')).toContain(
      `deploy ALL=(root) NOPASSWD: ${HELPER} hello install *, ${HELPER} hello restore, `,
    );
    expect(statSync(path.join(srv(), 'hello/shared/config/local.json')).mode & 0o777).toBe(0o600);
  }, 120_000);

  it('setup again changes nothing, and says so (one connection, one exec request)', async () => {
    fleet.resetCounts(fleet.hosts[0]);
    const result = await project.run(['setup']);
    expect(fleet.counts(fleet.hosts[0])).toMatchObject({ connections: 1, execRequests: 1 });
    expect(result.code, result.stderr + result.stdout).toBe(0);
    expect(result.stdout).not.toContain('changed:');
    expect(result.stdout).toMatch(/✓ web1 +setup .* nothing changed \(\d+ checked, all as they should be\)/);
  }, 120_000);

  it('setup as a user with passwordless sudo (setup.user) runs the same script through sudo: nothing to change', async () => {
    writeFileSync(path.join(etc, 'sudoers.d/admin'), `${DEPLOY_USER} ALL=(ALL) NOPASSWD: ALL\n`, { mode: 0o440 });
    const config = JSON.parse(readFileSync(project.configFile, 'utf8'));
    try {
      project.writeConfig({ setup: { ...config.setup, user: DEPLOY_USER } });
      const result = await project.run(['setup']);
      expect(result.code, result.stderr + result.stdout).toBe(0);
      expect(result.stdout).toMatch(/✓ web1 +setup .* nothing changed/);
      rmSync(path.join(etc, 'sudoers.d/admin'));
      const refused = await project.run(['setup']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`${DEPLOY_USER} cannot sudo without a password: set setup.user to root`);
    } finally {
      rmSync(path.join(etc, 'sudoers.d/admin'), { force: true });
      project.writeConfig();
    }
  }, 120_000);

  it('setup refuses a deployTo that is not a slipway deploy root, and changes nothing in it', async () => {
    const taken = path.join(srv(), 'taken');
    mkdirSync(taken);
    writeFileSync(path.join(taken, 'index.html'), 'mine\n');
    const config = JSON.parse(readFileSync(project.configFile, 'utf8'));
    const [host] = config.environments.local.hosts;
    try {
      project.writeConfig({ environments: { local: { hosts: [{ ...host, deployTo: '/srv/taken' }] } } });
      const result = await project.run(['setup']);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(
        'web1: setup stopped: deployTo /srv/taken is not empty and has no .slipway-root mark: not a slipway deploy root',
      );
      expect(readdirSync(taken)).toEqual(['index.html']);
      expect(statSync(taken).uid).toBe(0);
    } finally {
      project.writeConfig();
    }
  }, 120_000);

  it('what setup cannot install (a runAs user missing) is named with its fix, exit 1, after doing the rest', async () => {
    try {
      project.writeConfig({ runAs: 'nosuchuser' });
      const result = await project.run(['setup']);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('web1: user nosuchuser (runAs) is missing: useradd --system nosuchuser');
      // The rest was still done: the helper's config now names that user.
      expect(result.stdout).toContain('changed: helper config /etc/slipway/hello.conf updated');
    } finally {
      project.writeConfig();
    }
    const back = await project.run(['setup']);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toContain('changed: helper config /etc/slipway/hello.conf updated');
    expect(readFileSync(path.join(etc, 'slipway/hello.conf'), 'utf8')).toContain('\nrun_as=deploy\n');
  }, 120_000);

  it('check with a host key not in known_hosts: ✗ ssh with its fingerprint; the fix says how to trust it', async () => {
    const empty = path.join(scratch, 'empty_known_hosts');
    writeFileSync(empty, '');
    try {
      project.writeConfig({ knownHosts: empty });
      const result = await project.run(['check']);
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(
        /^✗ web1 +ssh +.*unknown host key .*SHA256:.*\n +fix: compare the fingerprint .*--trust-new-hosts/m,
      );
      expect(readFileSync(empty, 'utf8')).toBe('');
    } finally {
      project.writeConfig();
    }
  }, 120_000);

  it('check after setup: every verdict ✓ (nothing deployed yet), from one script on the host', async () => {
    fleet.resetCounts(fleet.hosts[0]);
    const result = await project.run(['check']);
    expect(fleet.counts(fleet.hosts[0])).toMatchObject({ connections: 1, execRequests: 1 });
    expect(result.code, result.stderr + result.stdout).toBe(0);
    for (const name of ['ssh', 'deploy root', 'lock', 'runtime', 'sudo rule', 'nginx -t', 'supervisorctl status'])
      expect(result.stdout).toMatch(new RegExp(`^✓ web1 +${name.replace(/[()]/g, '\\$&')} `, 'm'));
    expect(result.stdout).toMatch(
      /^✓ web1 +health check URL +http:\/\/127\.0\.0\.1:\d+\/health: fetched on each host, the app/m,
    );
    expect(result.stdout).toMatch(/^✓ web1 +\.env file +\.env\.local: 1 key;/m);
    expect(result.stdout).not.toMatch(/^✗/m);
  }, 120_000);

  it('a deploy as the deploy user, through the helper setup installed, serves the app', async () => {
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const id = releaseIdOf(result.stdout);
    expect(await stack.answer(id)).toContain(`hello from release ${id}`);
  }, 180_000);

  describe('check names each broken thing with its fix (exit 1)', () => {
    it('the sudo rule removed', async () => {
      const rule = path.join(etc, 'sudoers.d/slipway-hello');
      const text = readFileSync(rule, 'utf8');
      rmSync(rule);
      try {
        const result = await project.run(['check']);
        expect(result.code).toBe(1);
        expect(result.stdout).toMatch(
          new RegExp(
            `^✗ web1 +sudo rule \\(sudo -n ${HELPER}\\) +refuse 8 of 8 commands .*\n +fix: run \`setup\``,
            'm',
          ),
        );
        expect(result.stdout).toMatch(/^✓ web1 +deploy root /m);
      } finally {
        writeFileSync(rule, text, { mode: 0o440 });
      }
    }, 120_000);

    it("the environment's .env file deleted", async () => {
      const file = path.join(project.dir, '.env.local');
      const text = readFileSync(file, 'utf8');
      rmSync(file);
      try {
        const result = await project.run(['check']);
        expect(result.code).toBe(1);
        expect(result.stdout).toMatch(
          /^✗ web1 +\.env file +\.env\.local not found \(\.env\.local\.example lists API_TOKEN\)\n +fix: cp \.env\.local\.example \.env\.local/m,
        );
        expect(result.stdout).toMatch(/^✓ web1 +sudo rule /m);
      } finally {
        writeFileSync(file, text);
      }
    }, 120_000);

    it('supervisord stopped', async () => {
      await stack.stopSupervisord();
      const result = await project.run(['check']);
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(
        /^✗ web1 +supervisorctl status +.*\n +fix: fix what the helper names above: .*start supervisord/m,
      );
      expect(result.stdout).toMatch(/^✓ web1 +\.env file /m);
      // The one ✗ verdict, beside the step's own ✗ line.
      expect(result.stdout.match(/^✗ web1 +(?!check \(failed\))\S/gm)).toHaveLength(1);
    }, 120_000);
  });
});
