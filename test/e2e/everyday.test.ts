// The everyday tasks against real sshd hosts: `run:<command>` and `logs[:lines]` (with --follow ended by Ctrl-C)
// through slipway's own connection, and `ssh:<host> -- <command>` through the system's OpenSSH client with the
// config's port, user, key and known_hosts; and both on the local target.
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, releaseIdOf, signalCli, waitForOutput } from '../helpers/project.js';
import { type SshFleet, startSshHosts } from '../helpers/sshd.js';

const DEPLOY_TO = '/srv/everyday';

let fleet: SshFleet;
let project: Project;
let release: string;
beforeAll(async () => {
  fleet = await startSshHosts(2);
  project = makeProject({
    format: 'json',
    config: {
      knownHosts: fleet.knownHosts,
      dependencies: { type: 'none' },
      // A notification on the hosts (notifications.test.ts has the rest): over SSH, in the deploy root.
      hooks: { onSuccess: [{ name: 'mark', on: 'hosts', commands: ['echo "$SLIPWAY_RELEASE" > notified'] }] },
    },
    hosts: fleet.hosts.map((h) => fleet.configHost(h, DEPLOY_TO)),
  });
  const deploy = await project.run(['deploy']);
  expect(deploy.code, deploy.stderr + deploy.stdout).toBe(0);
  release = releaseIdOf(deploy.stdout);
}, 120_000);
afterAll(async () => {
  project?.cleanup();
  await fleet?.stop();
});

const logsDir = (i: number) => path.join(fleet.hosts[i].srvDir, 'everyday', 'shared', 'logs');

/** Processes running a tail of this suite's logs (the hosts share this machine's pid namespace). */
const tails = () => {
  try {
    return execFileSync('pgrep', ['-f', `tail -v -n 1 -F -- ${DEPLOY_TO}/`], { encoding: 'utf8' }).trim();
  } catch {
    return ''; // pgrep exits 1 when nothing matches
  }
};

it('hooks.onSuccess with on: hosts ran on each SSH host, in its deploy root', () => {
  for (const h of fleet.hosts)
    expect(readFileSync(path.join(h.srvDir, 'everyday', 'notified'), 'utf8')).toBe(`${release}\n`);
});

describe('run:<command>', () => {
  it('runs a shell command line in the live release on every host, output per host; exit 1 names the failed host', async () => {
    // The command is one word on the deployer's command line; its comma and spaces reach the host's shell as typed.
    mkdirSync(path.join(fleet.hosts[1].srvDir, 'everyday', 'shared', 'no-run'), { recursive: true });
    const result = await project.run(['run:echo "in $(pwd),  two  spaces"; test ! -e ../../shared/no-run']);
    expect(result.code, result.stderr + result.stdout).toBe(1);
    expect(result.stdout).toContain(`web1 in ${DEPLOY_TO}/current,  two  spaces`);
    expect(result.stdout).toContain(`web2 in ${DEPLOY_TO}/current,  two  spaces`);
    expect(result.stderr).toMatch(/web2: the command exited 1/);
    expect(result.stderr).not.toMatch(/web1: the command/);
    const ok = await project.run(['run:cat .slipway/release.json | grep -c "$(basename "$(pwd -P)")"']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('web1 1');
    expect(ok.stdout).toContain('web2 1');
  });

  it('`run` without a command, `--follow` or `-- COMMAND` on a task that takes neither: exit 2', async () => {
    const bare = await project.run(['run']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('run needs a command: run:<command>');
    const follow = await project.run(['run:true', '--follow']);
    expect(follow.code).toBe(2);
    expect(follow.stderr).toContain('--follow: none of the tasks given takes it (taken by: logs)');
    const command = await project.run(['deploy', '--', 'ls']);
    expect(command.code).toBe(2);
    expect(command.stderr).toContain('-- COMMAND: none of the tasks given takes it (taken by: ssh)');
  });
});

describe('logs', () => {
  it("logs:N shows each host's last N lines of stdout and stderr, every line after its host", async () => {
    mkdirSync(logsDir(0), { recursive: true });
    writeFileSync(
      path.join(logsDir(0), 'hello.out.log'),
      Array.from({ length: 100 }, (_, i) => `line ${i + 1}\n`).join(''),
    );
    writeFileSync(path.join(logsDir(0), 'hello.err.log'), 'boom\n\nafter a blank line\n');
    const result = await project.run(['logs:3']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines).toEqual(expect.arrayContaining(['web1 out| line 98', 'web1 out| line 100', 'web1 err| boom']));
    expect(lines).toEqual(expect.arrayContaining(['web1 err| ', 'web1 err| after a blank line']));
    expect(result.stdout).not.toContain('line 97');
    expect(result.stdout).not.toContain('==>');
    expect(result.stdout).toMatch(/web2 +logs .*no logs yet/);
    expect((await project.run(['logs:0'])).code).toBe(2);
  });

  it('--follow streams new lines until Ctrl-C, which stops the tail on the host: exit 130', async () => {
    const child = project.start(['logs:1', '--follow', '--hosts', 'web1']);
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await waitForOutput(child, /web1 out\| line 100/);
    appendFileSync(path.join(logsDir(0), 'hello.out.log'), 'fresh line\n');
    await waitForOutput(child, /web1 out\| fresh line/);
    expect(tails()).not.toBe('');
    signalCli(child, 'SIGINT');
    expect(await exited).toBe(130);
    for (let waited = 0; tails() && waited < 10_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
    expect(tails()).toBe('');
  }, 60_000);
});

describe('ssh:<host> -- <command> (the system OpenSSH client)', () => {
  it('runs the command in the live release, each word one argument, through the verified known_hosts', async () => {
    const result = await project.run(['ssh:web1', '--', 'printf', '%s|', 'a  b', '$HOME', ';id', "it's"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("a  b|$HOME|;id|it's|");
    const pwd = await project.run(['ssh:web2', '--', 'sh', '-c', 'pwd; cat .slipway/release.json']);
    expect(pwd.stdout).toContain(`${DEPLOY_TO}/current\n`);
    expect(pwd.stdout).toContain(release);
  });

  it("opens OpenSSH's one connection to that host, and none of slipway's own to any host", async () => {
    for (const h of fleet.hosts) fleet.resetCounts(h);
    expect((await project.run(['ssh:web1', '--', 'true'])).code).toBe(0);
    expect(fleet.counts(fleet.hosts[0]).connections).toBe(1);
    expect(fleet.counts(fleet.hosts[1]).connections).toBe(0);
  });

  it('a failing command exits 1 naming the host; several hosts without a name, an unknown name: exit 2', async () => {
    const failed = await project.run(['ssh:web2', '--', 'false']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('ssh: `false` exited 1 on web2');
    const which = await project.run(['ssh', '--', 'true']);
    expect(which.code).toBe(2);
    expect(which.stderr).toContain('ssh: which host? ssh:<host>, one of: web1, web2');
    const unknown = await project.run(['ssh:web9', '--', 'true']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('ssh: no host "web9" in environment local; hosts: web1, web2');
  });

  it('refuses a host whose key is not in known_hosts (StrictHostKeyChecking=yes), running nothing', async () => {
    const empty = path.join(project.dir, 'empty_known_hosts');
    writeFileSync(empty, '');
    const marker = path.join(fleet.hosts[0].srvDir, 'everyday', 'ssh-ran');
    project.writeConfig({ knownHosts: empty, dependencies: { type: 'none' } });
    try {
      const result = await project.run(['ssh:web1', '--', 'touch', `${DEPLOY_TO}/ssh-ran`]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/Host key verification failed/);
      expect(() => execFileSync('test', ['-e', marker])).toThrow();
    } finally {
      project.writeConfig({ knownHosts: fleet.knownHosts, dependencies: { type: 'none' } });
    }
  });
});

describe('on the local target', () => {
  let local: Project;
  beforeAll(async () => {
    local = makeProject({ config: { dependencies: { type: 'none' } } });
    expect((await local.run(['deploy'])).code).toBe(0);
  }, 60_000);
  afterAll(() => local?.cleanup());

  it('`ssh -- <command>` runs it locally in the live release; `run:` too', async () => {
    const ssh = await local.run(['ssh', '--', 'sh', '-c', 'echo "$PWD"; pwd -P']);
    expect(ssh.code, ssh.stderr).toBe(0);
    expect(ssh.stdout).toContain(`${path.join(local.deployTo, 'current')}\n${realpathSync(local.deployTo)}/releases/`);
    const run = await local.run(['run:ls .slipway']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('local release.json');
  });
});
