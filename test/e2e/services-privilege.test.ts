// Least privilege for nginx and supervisor: the deploy user's only sudo rule runs the root-owned
// helper (server/slipway-services), set up exactly as README's "Preparing a server" says, against
// nginx and supervisord running as root. A deploy and a rollback work end to end through it; what
// the deploy user can hand it (traversing ids, symlinks, a program with user=root or another name,
// nginx sites with load_module, include or log paths) is refused and no root-owned file changes.
// Also the install script without the helper: it stops at the first failing command and names it,
// and keeps its backups out of the directories nginx and supervisor include.
import { execFile, execFileSync } from 'node:child_process';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, releaseIdOf } from '../helpers/project.js';
import { deployRejectedSite, type ServiceStack, startServiceStack } from '../helpers/services.js';
import { DEPLOY_USER, type SshFleet, startSshHosts } from '../helpers/sshd.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const HELPER = '/usr/local/sbin/slipway-services';
/** README's sudo rule for the helper (what `setup` writes): exactly the calls a deploy, status and check make. */
const README_SUDO_RULE =
  `${DEPLOY_USER} ALL=(root) NOPASSWD: ${HELPER} hello install *, ${HELPER} hello restore, ${HELPER} hello commit, ` +
  `${HELPER} hello restart, ${HELPER} hello pid, ${HELPER} hello status, ${HELPER} hello tail, ` +
  `${HELPER} hello slot-start *, ${HELPER} hello slot-stop *, ${HELPER} hello slot-status *, ` +
  `${HELPER} hello slot-tail *, ${HELPER} hello reload, ${HELPER} hello test`;

describe('the install script without the helper (local target)', () => {
  let scratch: string;
  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'slipway-install-'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('a copy that fails stops the script there, naming the failing command; nginx is not blamed', async () => {
    // The site's folder cannot be made: a file is in the way (root or not).
    writeFileSync(path.join(scratch, 'file'), '');
    const site = path.join(scratch, 'file/hello.conf');
    const project = makeProject({
      format: 'json',
      config: {
        dependencies: { type: 'none' },
        services: {
          nginx: { site, enabled: path.join(scratch, 'enabled.conf'), test: 'nginx-not-installed -t', reload: 'true' },
          supervisor: false,
        },
      },
    });
    try {
      const result = await project.run(['deploy']);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/failed \(exit 1\): mkdir -p .*file/);
      expect(result.stderr).not.toContain('nginx rejected');
      expect(result.stderr).not.toContain('nginx-not-installed');
      expect(project.live()).toBeNull();
    } finally {
      project.cleanup();
    }
  });

  it(
    'backups of replaced configs are kept out of sites-enabled and ' +
      'conf.d (an `include sites-enabled/*` would load them)',
    async () => {
      const sitesAvailable = path.join(scratch, 'sites-available');
      const sitesEnabled = path.join(scratch, 'sites-enabled');
      const confD = path.join(scratch, 'conf.d');
      mkdirSync(sitesEnabled);
      // A supervisorctl whose restart fails: the deploy stops after installing, before it commits.
      const ctl = path.join(scratch, 'ctl');
      writeFileSync(ctl, '#!/bin/sh\ncase "$1" in restart) echo "ERROR (spawn error)"; exit 7;; esac\nexit 0\n', {
        mode: 0o755,
      });
      const project = makeProject({
        format: 'json',
        config: {
          dependencies: { type: 'none' },
          services: {
            nginx: {
              site: path.join(sitesAvailable, 'hello.conf'),
              enabled: path.join(sitesEnabled, 'hello.conf'),
              test: 'true',
              reload: 'true',
            },
            supervisor: { program: path.join(confD, 'hello.conf'), ctl },
          },
        },
      });
      try {
        const result = await project.run(['deploy', '--no-auto-rollback']);
        expect(result.code).toBe(1);
        expect(result.stderr).toContain('supervisor could not restart hello');
        expect(readdirSync(sitesEnabled)).toEqual(['hello.conf']);
        expect(readdirSync(confD)).toEqual(['hello.conf']);
        expect(readdirSync(sitesAvailable)).toEqual(['hello.conf']);
      } finally {
        project.cleanup();
      }
    },
  );

  it("the default supervisor template runs the program as runAs (user=), not as supervisord's root", async () => {
    const project = makeProject({ format: 'json', config: { dependencies: { type: 'none' }, runAs: 'nobody' } });
    try {
      const result = await project.run(['deploy']);
      expect(result.code, result.stderr).toBe(0);
      const program = readFileSync(
        path.join(project.deployTo, 'releases', releaseIdOf(result.stdout), '.slipway/supervisor.conf'),
        'utf8',
      );
      expect(program).toMatch(/^user=nobody$/m);
    } finally {
      project.cleanup();
    }
  });

  it(
    'services.helper with paths of its own, or a relative helper, ' + 'is a config error naming the key (exit 2)',
    async () => {
      const project = makeProject({
        format: 'json',
        config: {
          services: {
            helper: HELPER,
            nginx: { site: '/etc/nginx/sites-available/x.conf' },
            supervisor: { ctl: 'supervisorctl' },
          },
        },
      });
      try {
        const result = await project.run(['deploy']);
        expect(result.code).toBe(2);
        expect(result.stderr).toMatch(/services\.nginx\.site: set by the helper's own config/);
        expect(result.stderr).toMatch(/services\.supervisor\.ctl: set by the helper's own config/);
        project.writeConfig({ services: { helper: 'slipway-services' } });
        const relative = await project.run(['deploy']);
        expect(relative.code).toBe(2);
        expect(relative.stderr).toMatch(/services\.helper: an absolute path/);
        expect(project.live()).toBeNull();
      } finally {
        project.cleanup();
      }
    },
  );
});

describe('through the root-owned helper over SSH, with nginx and supervisord running as root', () => {
  let fleet: SshFleet;
  let stack: ServiceStack;
  let project: Project;
  let setup: string;
  let deployTo: string;
  let victim: string;
  let createdEtcSlipway = false;

  /** Runs a command on the host as the deploy user, over ssh. */
  const asDeployUser = (command: string) =>
    new Promise<{ code: number; out: string }>((resolve) => {
      const h = fleet.hosts[0];
      const args = [
        '-i',
        fleet.clientKey,
        '-p',
        String(h.port),
        '-o',
        `UserKnownHostsFile=${fleet.knownHosts}`,
        '-o',
        'BatchMode=yes',
        `${h.user}@${h.address}`,
        command,
      ];
      execFile('ssh', args, { timeout: 30_000 }, (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, out: `${stdout}${stderr}` }),
      );
    });

  beforeAll(async () => {
    stack = await startServiceStack();
    setup = mkdtempSync(path.join(tmpdir(), 'slipway-helper-'));
    // README's "Preparing a server", with the test's folders seen by the host at the documented paths.
    const sbin = path.join(setup, 'sbin');
    const sudoers = path.join(setup, 'sudoers.d');
    const etcSlipway = path.join(setup, 'etc-slipway');
    for (const d of [sbin, sudoers, etcSlipway]) mkdirSync(d, { mode: 0o755 });
    execFileSync('install', [
      '-o',
      'root',
      '-g',
      'root',
      '-m',
      '0755',
      path.join(ROOT, 'server/slipway-services'),
      path.join(sbin, 'slipway-services'),
    ]);
    writeFileSync(path.join(sudoers, 'slipway-test'), `${README_SUDO_RULE}\n`, {
      mode: 0o440,
    });
    execFileSync('visudo', ['-c', '-q', '-f', path.join(sudoers, 'slipway-test')]);
    if (!existsSync('/etc/slipway')) {
      mkdirSync('/etc/slipway');
      createdEtcSlipway = true;
    }
    fleet = await startSshHosts(1, {
      loginShell: '/bin/sh',
      privateDirs: { '/usr/local/sbin': sbin, '/etc/sudoers.d': sudoers, '/etc/slipway': etcSlipway },
    });
    const user = fleet.hosts[0].user;
    // The deploy root is outside the host's private /srv, so the root daemons see it too.
    deployTo = path.join(stack.dir, 'deploy');
    mkdirSync(deployTo);
    chownSync(deployTo, Number(execFileSync('id', ['-u', user])), Number(execFileSync('id', ['-g', user])));
    const logs = path.join(stack.dir, 'logs');
    mkdirSync(logs, { mode: 0o755 });
    victim = path.join(stack.dir, 'root-owned');
    writeFileSync(victim, 'original\n', { mode: 0o644 });
    writeFileSync(
      path.join(etcSlipway, 'hello.conf'),
      [
        `deploy_user=${user}`,
        `deploy_to=${deployTo}`,
        'program=hello',
        `run_as=${user}`,
        `program_file=${path.join(stack.supervisorConfD, 'hello.conf')}`,
        `supervisorctl=${stack.supervisorctl}`,
        `site=${path.join(stack.sitesAvailable, 'hello.conf')}`,
        `enabled=${path.join(stack.sitesEnabled, 'hello.conf')}`,
        `nginx_test=${stack.nginxTest}`,
        `nginx_reload=${stack.nginxReload}`,
        `allowed_paths=${logs}`,
        `state_dir=${path.join(stack.dir, 'state')}`,
        '',
      ].join('\n'),
      { mode: 0o644 },
    );
    const h = fleet.hosts[0];
    project = makeProject({
      format: 'json',
      config: {
        knownHosts: fleet.knownHosts,
        ...stack.deployConfig(),
        runAs: user,
        vars: { listen: `127.0.0.1:${stack.nginxPort}`, logDir: logs },
        services: { helper: HELPER },
      },
      hosts: [{ name: 'web1', host: h.address, port: h.port, user: h.user, privateKey: fleet.clientKey, deployTo }],
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await fleet?.stop();
    project?.cleanup();
    if (setup) rmSync(setup, { recursive: true, force: true });
    if (createdEtcSlipway) rmdirSync('/etc/slipway');
  });

  const installed = () => ({
    site: readFileSync(path.join(stack.sitesAvailable, 'hello.conf'), 'utf8'),
    program: readFileSync(path.join(stack.supervisorConfD, 'hello.conf'), 'utf8'),
    enabled: readdirSync(stack.sitesEnabled),
    victim: readFileSync(victim, 'utf8'),
  });
  let first: string;

  it(
    'deploy: the helper installs the site and program as root; ' +
      'the program runs as the deploy user; nginx serves it',
    async () => {
      const result = await project.run(['deploy']);
      expect(result.code, result.stderr + result.stdout).toBe(0);
      first = releaseIdOf(result.stdout);
      expect(result.stdout).toMatch(/configs .*installed nginx, supervisor \(validated\)/);
      expect(result.stdout).toMatch(/health .*answered 200/);
      expect(await stack.answer(first)).toContain(`hello from release ${first}`);
      const program = path.join(stack.supervisorConfD, 'hello.conf');
      expect(statSync(program).uid).toBe(0);
      expect(readFileSync(program, 'utf8')).toMatch(new RegExp(`^user=${DEPLOY_USER}$`, 'm'));
      const status = await project.run(['status']);
      expect(status.stdout).toMatch(/supervisor: hello\s+RUNNING/);
      expect(status.stdout).toContain('nginx: config ok');
      // The app's process runs as the deploy user, not as supervisord's root.
      const pid = /RUNNING\s+pid (\d+)/.exec(status.stdout)?.[1];
      expect(statSync(`/proc/${pid}`).uid).toBe(Number(execFileSync('id', ['-u', DEPLOY_USER])));
    },
  );

  it(
    "check, set up as README says: ✓ the helper's sudo rule for each call a deploy makes, " +
      'nginx -t and supervisorctl through the helper',
    async () => {
      const result = await project.run(['check']);
      expect(result.code, result.stderr + result.stdout).toBe(0);
      expect(result.stdout).toMatch(
        new RegExp(`^✓ web1 +sudo rule \\(sudo -n ${HELPER}\\) +allow all 8 commands a deploy runs$`, 'm'),
      );
      expect(result.stdout).toMatch(
        new RegExp(`^✓ web1 +nginx -t +sudo -n ${HELPER} hello test: configuration ok$`, 'm'),
      );
      expect(result.stdout).toMatch(
        new RegExp(`^✓ web1 +supervisorctl status +sudo -n ${HELPER} hello status: supervisord answers$`, 'm'),
      );
      expect(result.stdout).not.toMatch(/^✗/m);
    },
  );

  it(
    'check without the sudo rule: ✗ each, ' + 'the fix says to set up the helper, its config and its sudoers line',
    async () => {
      const rule = path.join(setup, 'sudoers.d/slipway-test');
      const text = readFileSync(rule, 'utf8');
      rmSync(rule);
      try {
        const result = await project.run(['check']);
        expect(result.code).toBe(1);
        const sudo = new RegExp(`^✗ web1 +sudo rule \\(sudo -n ${HELPER}\\) +(.*)\n +fix: (.*)$`, 'm').exec(
          result.stdout,
        );
        expect(sudo?.[1]).toMatch(
          new RegExp(`^refuse 8 of 8 commands a deploy runs, e\\.g\\. ${HELPER} hello install \\S+: sudo: `),
        );
        expect(sudo?.[2]).toContain(
          `/etc/slipway/hello.conf, and its sudo rule in /etc/sudoers.d/slipway-hello: "${README_SUDO_RULE}"`,
        );
        expect(result.stdout).toMatch(/^✗ web1 +nginx -t +.*sudo: .*\n +fix: let slipway run it through sudo/m);
        expect(result.stdout).not.toMatch(/^✓ web1 +(sudo|nginx|supervisorctl)/m);
      } finally {
        writeFileSync(rule, text, { mode: 0o440 });
      }
    },
  );

  it(
    'the upload runs no nginx -t of its own through sudo (a -c of ' +
      "the deploy user's choosing): the helper validates the site",
    async () => {
      const result = await project.run(['deploy', '--dry-run']);
      expect(result.code, result.stderr + result.stdout).toBe(0);
      expect(result.stdout).toContain(`${HELPER} hello install`);
      expect(result.stdout).not.toContain('nginx-check');
      expect(result.stdout).not.toMatch(/sudo -n \S*nginx/);
    },
  );

  it('the deploy user may run the helper and nothing else as root', async () => {
    const copy = await asDeployUser(`sudo -n cp /etc/hostname ${victim}`);
    expect(copy.code).not.toBe(0);
    const nginx = await asDeployUser(`sudo -n /usr/sbin/nginx -t`);
    expect(nginx.code).not.toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('original\n');
    // What it offers without arguments, e.g. the program's pid (purge asks it whether a release is still in use).
    const pid = await asDeployUser(`sudo -n ${HELPER} hello pid`);
    expect(pid.code, pid.out).toBe(0);
    expect(Number(pid.out.trim())).toBeGreaterThan(1);
  });

  it(
    'ids, names and subcommands the helper does not know are refused: by the sudo rule (exit 1), ' +
      'and by the helper itself under a rule allowing it any arguments (exit 2)',
    async () => {
      const before = installed();
      const calls = [
        'hello install ../../../etc',
        'hello install',
        `../hello install ${first}`,
        'nothere install 2030.01.01-00.00.00-abcdef0',
        'hello sh -c id',
      ];
      for (const args of calls) {
        const result = await asDeployUser(`sudo -n ${HELPER} ${args}`);
        // Only `install <anything>` passes README's rule; the helper refuses that id.
        expect(result.code, `${args}: ${result.out}`).toBe(args === calls[0] ? 2 : 1);
        if (args !== calls[0]) expect(result.out).toMatch(/^sudo: /m);
      }
      const rule = path.join(setup, 'sudoers.d/slipway-test');
      writeFileSync(rule, `${DEPLOY_USER} ALL=(root) NOPASSWD: ${HELPER}\n`, { mode: 0o440 });
      try {
        for (const args of calls) {
          const result = await asDeployUser(`sudo -n ${HELPER} ${args}`);
          expect(result.code, `${args}: ${result.out}`).toBe(2);
        }
      } finally {
        writeFileSync(rule, `${README_SUDO_RULE}\n`, { mode: 0o440 });
      }
      expect(installed()).toEqual(before);
    },
  );

  it(
    'a forged release is refused as a whole: symlinks, another program, ' +
      'user=root, foreign sections, log paths, load_module, include',
    async () => {
      const before = installed();
      const id = '2030.01.01-00.00.00-abcdef0';
      const dir = `${deployTo}/releases/${id}/.slipway`;
      const liveSite = `${deployTo}/releases/${first}/.slipway/nginx.conf`;
      const liveProgram = `${deployTo}/releases/${first}/.slipway/supervisor.conf`;
      const program = (edit: string) =>
        `sed ${edit} ${liveProgram} > ${dir}/supervisor.conf; cp ${liveSite} ${dir}/nginx.conf`;
      const site = (text: string) =>
        `cp ${liveProgram} ${dir}/supervisor.conf; printf '%s\\n' '${text}' | cat - ${liveSite} > ${dir}/nginx.conf`;
      const forgeries: Array<[string, string, RegExp]> = [
        ['site is a symlink', `cp ${liveProgram} ${dir}/; ln -s ${victim} ${dir}/nginx.conf`, /symlink/],
        [
          '.slipway is a symlink',
          `rm -rf ${dir} && mkdir -p /tmp/slipway-forged-$$ && cp ${liveSite} ` +
            `${liveProgram} /tmp/slipway-forged-$$/ && ln -s /tmp/slipway-forged-$$ ${dir}`,
          /symlink/,
        ],
        ['user=root', program(`-e 's/^user=.*/user=root/'`), /user=root; it must be user=slipway/],
        ['no user=', program(`-e '/^user=/d'`), /exactly one line user=slipway/],
        [
          'another program name',
          program(`-e 's/^\\[program:hello\\]/[program:evil]/'`),
          /only the section \[program:hello\]/,
        ],
        ['a second section', program(`-e '$a [include]' -e '$a files=/tmp/*.conf'`), /only the section/],
        [
          'a log outside allowed_paths',
          program(`-e 's|^stdout_logfile=.*|stdout_logfile=${victim}|'`),
          /not under allowed_paths/,
        ],
        // A lone CR ends a line for supervisor's Python, not for a line-by-line shell check.
        [
          'user=root after a lone CR',
          `${program('-n -e p')}; printf 'autostart=true\\ruser=root\\n' >> ${dir}/supervisor.conf`,
          /control characters/,
        ],
        [
          'a directive after a NUL',
          `cp ${liveProgram} ${dir}/; printf 'return 200 x\\000; load_module /tmp/evil.so;\\n' > ${dir}/nginx.conf`,
          /control characters/,
        ],
        ['a continuation line', program(`-e 's/^user=.*/user=slipway\\n  root/'`), /continuation/],
        ['load_module', site('load_module /tmp/evil.so;'), /load_module is not accepted/],
        ['include', site('include /etc/passwd;'), /include is not accepted/],
        [
          'include hidden after a quoted #',
          site('map $uri $x { default "#"; } include /etc/passwd;'),
          /include is not accepted/,
        ],
        ['an error_log on a root-owned file', site(`error_log ${victim};`), /not under allowed_paths/],
        ['a temp path nginx would chown', site('proxy_temp_path /etc/sudoers.d;'), /proxy_temp_path is not accepted/],
        [
          'a unix socket nginx would create and remove',
          site(`server { listen unix:${victim}; }`),
          /listen unix:.* is not under allowed_paths/,
        ],
      ];
      for (const [what, forge, message] of forgeries) {
        const made = await asDeployUser(`set -e; rm -rf ${dir}; mkdir -p ${dir}; ${forge}`);
        expect(made.code, `${what}: ${made.out}`).toBe(0);
        const result = await asDeployUser(`sudo -n ${HELPER} hello install ${id}`);
        expect(result.code, `${what}: ${result.out}`).toBe(1);
        expect(result.out, what).toMatch(message);
        expect(installed(), what).toEqual(before);
      }
      // The same files, unforged, pass: the refusals above are the checks, not a refusal of everything.
      const copied = await asDeployUser(
        `set -e; rm -rf ${dir}; mkdir -p ${dir}; cp ${liveSite} ${liveProgram} ${dir}/`,
      );
      expect(copied.code, copied.out).toBe(0);
      const accepted = await asDeployUser(`sudo -n ${HELPER} hello install ${id}`);
      expect(accepted.code, accepted.out).toBe(0);
      expect(installed()).toEqual(before);
      await asDeployUser(`rm -rf ${deployTo}/releases/${id} /tmp/slipway-forged-*`);
      expect(await stack.answer(first)).toContain(`hello from release ${first}`);
    },
  );

  it('a site nginx rejects: the helper puts the previous files back, the deploy stops before the switch', async () => {
    const before = installed();
    await deployRejectedSite(project);
    expect(installed()).toEqual(before);
    expect(readlinkSync(path.join(deployTo, 'current'))).toBe(`releases/${first}`);
    expect(await stack.answer(first)).toContain(`hello from release ${first}`);
  });

  it(
    'a failure halfway through the install (the program path is a folder): ' + 'the site already replaced is put back',
    async () => {
      const before = installed();
      const program = path.join(stack.supervisorConfD, 'hello.conf');
      const template = path.join(project.dir, 'templates/nginx.conf.hbs');
      const original = readFileSync(template, 'utf8');
      rmSync(program);
      mkdirSync(program);
      writeFileSync(template, original.replace('location / {', 'location / {\n        add_header X-Halfway 1;'));
      const result = await project.run(['deploy']);
      writeFileSync(template, original);
      rmdirSync(program);
      writeFileSync(program, before.program, { mode: 0o600 });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/slipway-services: failed \(exit 1\): .*; previous files put back/);
      expect(installed()).toEqual(before);
      expect(readlinkSync(path.join(deployTo, 'current'))).toBe(`releases/${first}`);
    },
  );

  it('a program whose command cannot be found: the deploy names that command and what supervisor meant', async () => {
    const template = path.join(project.dir, 'templates/supervisor.conf.hbs');
    const original = readFileSync(template, 'utf8');
    writeFileSync(template, original.replace(/^command=.*$/m, 'command=no-such-runtime server.js'));
    const result = await project.run(['deploy']);
    writeFileSync(template, original);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('ERROR (no such file)');
    expect(result.stderr).toContain('its command (.slipway/supervisor.conf): no-such-runtime server.js');
    expect(result.stderr).toContain('supervisor found no such program: install it on the host');
    expect(readlinkSync(path.join(deployTo, 'current'))).toBe(`releases/${first}`);
    expect(await stack.answer(first)).toContain(`hello from release ${first}`);
  });

  it('a second release, then rollback and rollback:current, each through the helper', async () => {
    const template = path.join(project.dir, 'templates/nginx.conf.hbs');
    writeFileSync(
      template,
      readFileSync(template, 'utf8').replace(
        'location / {',
        'location / {\n        add_header X-Release {{releaseId}};',
      ),
    );
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const second = releaseIdOf(result.stdout);
    expect(result.stdout).toMatch(/configs .*installed nginx \(validated\)/);
    expect(await stack.answer(second)).toContain(`hello from release ${second}`);
    const back = await project.run(['rollback']);
    expect(back.code, back.stderr).toBe(0);
    expect(await stack.answer(first)).toContain(`hello from release ${first}`);
    expect(readFileSync(path.join(stack.sitesAvailable, 'hello.conf'), 'utf8')).not.toContain('X-Release');
    const forward = await project.run(['rollback:current']);
    expect(forward.code, forward.stderr).toBe(0);
    expect(await stack.answer(second)).toContain(`hello from release ${second}`);
    expect(readdirSync(stack.sitesEnabled)).toEqual(['hello.conf']);
    expect(readFileSync(victim, 'utf8')).toBe('original\n');
  });

  it(
    'blue-green through the helper: its slot-start and slot-stop run the two slots (root-owned program file, ' +
      'sections checked); deploy, deploy, rollback; a forged slot section is refused',
    async () => {
      const h = fleet.hosts[0];
      const blueGreen = makeProject({
        format: 'json',
        config: {
          knownHosts: fleet.knownHosts,
          ...stack.deployConfig(),
          runAs: h.user,
          vars: { listen: `127.0.0.1:${stack.nginxPort}`, logDir: path.join(stack.dir, 'logs') },
          services: { helper: HELPER },
          cutover: { strategy: 'blue-green', drainSeconds: 5 },
        },
        hosts: [{ name: 'web1', host: h.address, port: h.port, user: h.user, privateKey: fleet.clientKey, deployTo }],
      });
      try {
        const ids: string[] = [];
        for (let i = 0; i < 2; i++) {
          blueGreen.commit({ 'x.txt': String(i) }, `change ${i}`);
          const result = await blueGreen.run(['deploy']);
          expect(result.code, result.stderr + result.stdout).toBe(0);
          expect(result.stdout).toMatch(/start-slot .*hello-(blue|green) on .*answered 200/);
          ids.push(releaseIdOf(result.stdout));
          expect(await stack.answer(ids[i])).toContain(`hello from release ${ids[i]}`);
        }
        const program = path.join(stack.supervisorConfD, 'hello.conf');
        expect(statSync(program).uid).toBe(0);
        const sections = readFileSync(program, 'utf8');
        expect(sections).toMatch(/^\[program:hello-blue\]$/m);
        expect(sections).toMatch(/^\[program:hello-green\]$/m);
        expect(sections.match(/^autostart=true$/gm)).toHaveLength(1);
        const back = await blueGreen.run(['rollback']);
        expect(back.code, back.stderr + back.stdout).toBe(0);
        expect(back.stdout).toMatch(/drain-slot .*drained and stopped hello-/);
        expect(await stack.answer(ids[0])).toContain(`hello from release ${ids[0]}`);
        // A section naming another program, handed to slot-start directly: refused, nothing installed.
        const forged = `${deployTo}/releases/${ids[1]}/.slipway/supervisor.green.conf`;
        const edit = await asDeployUser(`sed -i 's/^\\[program:hello-green\\]/[program:evil]/' ${forged}`);
        expect(edit.code, edit.out).toBe(0);
        const before = readFileSync(program, 'utf8');
        const refused = await asDeployUser(`sudo -n ${HELPER} hello slot-start green ${ids[1]}`);
        expect(refused.code, refused.out).toBe(1);
        expect(refused.out).toContain('only the section [program:hello-green] is accepted');
        expect(readFileSync(program, 'utf8')).toBe(before);
        expect((await asDeployUser(`sudo -n ${HELPER} hello slot-stop purple`)).code).toBe(2);
      } finally {
        blueGreen.cleanup();
      }
    },
  );
});
