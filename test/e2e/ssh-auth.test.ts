// The other ways in over SSH, against real sshd hosts: a private key with a passphrase (taken from
// an environment variable), ssh-agent, and a host reached through a ProxyJump host of ~/.ssh/config.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopBroker, waitForBroker } from '../helpers/broker.js';
import { makeProject, type Project } from '../helpers/project.js';
import { type SshFleet, startSshHosts } from '../helpers/sshd.js';

let fleet: SshFleet;
beforeAll(async () => {
  fleet = await startSshHosts(2);
});
afterAll(() => fleet?.stop());

const deployed = (srv: string, app: string) => existsSync(path.join(srv, app, 'current'));

describe('authentication', () => {
  let project: Project | undefined;
  afterAll(() => project?.cleanup());

  it(
    'a key with a passphrase: read from the variable passphraseEnv names; ' +
      'never printed; a wrong one is a config error naming the host',
    async () => {
      const h = fleet.hosts[0];
      const key = path.join(fleet.dir, 'key-with-passphrase');
      copyFileSync(fleet.clientKey, key);
      execFileSync('ssh-keygen', ['-q', '-p', '-P', '', '-N', 'correct horse battery', '-f', key]);
      project = makeProject({
        format: 'json',
        config: { knownHosts: fleet.knownHosts },
        hosts: [
          {
            name: 'web',
            host: h.address,
            port: h.port,
            user: h.user,
            privateKey: key,
            passphraseEnv: 'DEPLOY_KEY_PASSPHRASE',
            deployTo: '/srv/passphrase',
          },
        ],
      });

      const missing = await project.run(['deploy']);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('web: passphraseEnv names DEPLOY_KEY_PASSPHRASE, which is not set');

      const wrong = await project.run(['deploy'], { env: { DEPLOY_KEY_PASSPHRASE: 'wrong horse' } });
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toMatch(/web: Cannot parse privateKey: .*bad passphrase/);
      expect(wrong.stdout + wrong.stderr).not.toContain('wrong horse');
      expect(deployed(h.srvDir, 'passphrase')).toBe(false);

      const right = await project.run(['deploy'], { env: { DEPLOY_KEY_PASSPHRASE: 'correct horse battery' } });
      expect(right.code, right.stderr).toBe(0);
      expect(right.stdout + right.stderr).not.toContain('correct horse battery');
      expect(deployed(h.srvDir, 'passphrase')).toBe(true);
    },
  );

  it('ssh-agent: a host entry without privateKey authenticates with the agent of SSH_AUTH_SOCK', async () => {
    const h = fleet.hosts[1];
    const socket = path.join(fleet.dir, 'agent.sock');
    const agent: ChildProcess = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
      execFileSync('ssh-add', ['-q', fleet.clientKey], {
        env: { ...process.env, SSH_AUTH_SOCK: socket },
        stdio: 'ignore',
      });
      const home = path.join(fleet.dir, 'home-agent'); // no ~/.ssh/config, no key files
      mkdirSync(home, { recursive: true });
      const agentProject = makeProject({
        format: 'json',
        config: { knownHosts: fleet.knownHosts },
        hosts: [{ name: 'web', host: h.address, port: h.port, user: h.user, deployTo: '/srv/agent' }],
      });
      try {
        const without = await agentProject.run(['deploy'], { env: { HOME: home, SSH_AUTH_SOCK: '' } });
        expect(without.code).not.toBe(0); // no key and no agent: refused, so the agent below is what lets it in
        const result = await agentProject.run(['deploy'], { env: { HOME: home, SSH_AUTH_SOCK: socket } });
        expect(result.code, result.stderr).toBe(0);
        expect(deployed(h.srvDir, 'agent')).toBe(true);
      } finally {
        agentProject.cleanup();
      }
    } finally {
      agent.kill();
    }
  });
});

describe('~/.ssh/config ProxyJump', () => {
  /** A HOME whose ~/.ssh/config reaches `app-behind` (the second host) through `bastion` (the first). */
  const jumpHome = (name: string) => {
    const [jump, target] = fleet.hosts;
    const home = path.join(fleet.dir, name);
    mkdirSync(path.join(home, '.ssh'), { recursive: true });
    writeFileSync(
      path.join(home, '.ssh/config'),
      [
        'Host bastion',
        `  HostName ${jump.address}`,
        `  Port ${jump.port}`,
        `  User ${jump.user}`,
        `  IdentityFile ${fleet.clientKey}`,
        'Host app-behind',
        `  HostName ${target.address}`,
        `  Port ${target.port}`,
        `  User ${target.user}`,
        `  IdentityFile ${fleet.clientKey}`,
        '  ProxyJump bastion',
        '',
      ].join('\n'),
    );
    writeFileSync(path.join(home, '.ssh/known_hosts'), readFileSync(fleet.knownHosts));
    return home;
  };

  it("reaches a host through the jump host it names, with the jump host's own alias settings", async () => {
    const [jump, target] = fleet.hosts;
    const home = jumpHome('home-jump');
    const project = makeProject({
      format: 'json',
      hosts: [{ name: 'behind', host: 'app-behind', deployTo: '/srv/jumped' }],
    });
    const before = readFileSync(jump.logFile, 'utf8').length;
    try {
      const result = await project.run(['deploy'], { env: { HOME: home } });
      expect(result.code, result.stderr).toBe(0);
      expect(deployed(target.srvDir, 'jumped')).toBe(true);
      expect(deployed(jump.srvDir, 'jumped')).toBe(false);
      // The jump host's sshd opened the forwarded connection to the target.
      expect(readFileSync(jump.logFile, 'utf8').slice(before)).toMatch(
        new RegExp(
          `direct-tcpip.*${target.address.replace(/\./g, '\\.')} port ${target.port}|target ` +
            `${target.address.replace(/\./g, '\\.')} port ${target.port}`,
        ),
      );
    } finally {
      project.cleanup();
    }
  });

  it(
    'the connection to the jump host is closed with the one through it: a ' +
      'kept connection reconnected holds one jump connection',
    async () => {
      const [jump, target] = fleet.hosts;
      const home = jumpHome('home-jump-kept');
      const tmp = mkdtempSync(path.join(tmpdir(), 'slipway-jump-'));
      const project = makeProject({
        format: 'json',
        config: { keepConnections: 60 },
        hosts: [{ name: 'behind', host: 'app-behind', deployTo: '/srv/jumped-kept' }],
      });
      const env = { HOME: home, TMPDIR: tmp, XDG_RUNTIME_DIR: '' };
      // Established TCP connections to the jump host's sshd: only the broker's once the runs have exited.
      const toJump = () =>
        execFileSync('ss', ['-Htn', 'state', 'established', 'dst', `${jump.address}:${jump.port}`])
          .toString()
          .split('\n')
          .filter(Boolean).length;
      try {
        expect((await project.run(['releases'], { env })).code).toBe(0);
        expect(await waitForBroker(tmp)).not.toBeNull();
        expect((await project.run(['releases'], { env })).code).toBe(0); // served by the broker
        expect(toJump()).toBe(1);
        fleet.kill(target); // the connection through the jump host goes; the broker reconnects on the next run
        await fleet.revive(target);
        const again = await project.run(['releases'], { env });
        expect(again.code, again.stderr).toBe(0);
        expect(toJump()).toBe(1);
      } finally {
        stopBroker(tmp);
        project.cleanup();
      }
    },
  );
});
