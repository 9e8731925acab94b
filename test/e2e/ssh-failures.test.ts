// What goes wrong over SSH: host keys, a host dying mid-deploy, a connection cut mid-upload, locks
// held by others (judged by the host's clock, not the deployer's).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopBroker, waitForBroker } from '../helpers/broker.js';
import { makeProject, runCli, waitForOutput } from '../helpers/project.js';
import { type SshFleet, startCuttingRelay, startSshHosts, type TestHost } from '../helpers/sshd.js';

let fleet: SshFleet;
beforeAll(async () => {
  fleet = await startSshHosts(5);
});
afterAll(() => fleet?.stop());

const hostEntry = (h: TestHost, over: Record<string, unknown> = {}) => ({
  ...fleet.configHost(h, '/srv/app'),
  ...over,
});
const root = (h: TestHost) => path.join(h.srvDir, 'app');
const live = (h: TestHost) =>
  existsSync(path.join(root(h), 'current'))
    ? readlinkSync(path.join(root(h), 'current')).replace('releases/', '')
    : null;
const releases = (h: TestHost) =>
  existsSync(path.join(root(h), 'releases')) ? readdirSync(path.join(root(h), 'releases')).sort() : [];
const tmpEntries = (h: TestHost) =>
  existsSync(path.join(root(h), 'tmp')) ? readdirSync(path.join(root(h), 'tmp')) : [];

describe('host keys', () => {
  it(
    'an unknown host key is refused with its fingerprint; ' +
      '--trust-new-hosts records it; a changed key is always refused',
    async () => {
      const h = fleet.hosts[4];
      const knownHosts = path.join(fleet.dir, 'known_hosts_empty');
      writeFileSync(knownHosts, '');
      const project = makeProject({ format: 'json', config: { knownHosts }, hosts: [hostEntry(h)] });
      try {
        const refused = await project.run(['check']);
        expect(refused.code).toBe(1);
        expect(refused.stderr).toMatch(/unknown host key for \[127\.0\.0\.6\]:\d+: ssh-ed25519 SHA256:\S+/);
        expect(refused.stderr).toContain('--trust-new-hosts');
        const trusted = await project.run(['check', '--trust-new-hosts']);
        expect(trusted.code, trusted.stderr).toBe(0);
        expect(readFileSync(knownHosts, 'utf8')).toContain(`[${h.address}]:${h.port} ssh-ed25519 `);
        expect((await project.run(['check'])).code).toBe(0);

        await fleet.regenerateHostKey(h);
        for (const flags of [[], ['--trust-new-hosts']]) {
          const changed = await project.run(['deploy', ...flags]);
          expect(changed.code).toBe(1);
          expect(changed.stderr).toContain('HOST KEY CHANGED');
          expect(changed.stderr).toMatch(/SHA256:\S+/);
        }
        expect(existsSync(root(h))).toBe(false);
      } finally {
        project.cleanup();
      }
    },
  );
});

describe('a host dying during prepare', () => {
  it('on a fleet of 5, no host switches and the new release is removed from every reachable host', async () => {
    const hosts = fleet.hosts;
    const project = makeProject({
      format: 'json',
      config: { knownHosts: fleet.knownHosts },
      hosts: hosts.map((h) => hostEntry(h, { deployTo: '/srv/dying' })),
    });
    try {
      expect((await project.run(['deploy'])).code).toBe(0);
      const before = hosts.map((h) => readlinkSync(path.join(h.srvDir, 'dying/current')));
      const resume = path.join(project.dir, 'resume');
      const child = project.start(['deploy'], {
        SLIPWAY_FAULT: 'pause:before:before-switch',
        SLIPWAY_FAULT_RESUME: resume,
      });
      await waitForOutput(child, /@@paused before:before-switch/);
      fleet.kill(hosts[1]);
      writeFileSync(resume, '');
      const code = await new Promise((resolve) => child.on('close', resolve));
      await fleet.revive(hosts[1]);
      expect(code).toBe(1);
      for (const [i, h] of hosts.entries()) expect(readlinkSync(path.join(h.srvDir, 'dying/current'))).toBe(before[i]);
      for (const h of hosts.filter((_, i) => i !== 1)) {
        expect(readdirSync(path.join(h.srvDir, 'dying/releases'))).toHaveLength(1);
        expect(readdirSync(path.join(h.srvDir, 'dying/tmp'))).toEqual([]);
        expect(existsSync(path.join(h.srvDir, 'dying/deploy.lock'))).toBe(false);
      }
    } finally {
      project.cleanup();
    }
  });
});

describe('a switch failing on one host', () => {
  it('switches the others back, says which host is on which release, and removes the new release', async () => {
    const hosts = fleet.hosts.slice(0, 3);
    const project = makeProject({
      format: 'json',
      config: { knownHosts: fleet.knownHosts },
      hosts: hosts.map((h) => hostEntry(h, { deployTo: '/srv/switchback' })),
    });
    try {
      expect((await project.run(['deploy'])).code).toBe(0);
      const before = hosts.map((h) => readlinkSync(path.join(h.srvDir, 'switchback/current')));
      // A directory where web2's new link is made: `mv -T` of it over `current` fails there only.
      const blocker = path.join(hosts[1].srvDir, 'switchback/.current.next');
      execFileSync('mkdir', [blocker]);
      const result = await project.run(['deploy']);
      execFileSync('rm', ['-rf', blocker]);
      expect(result.code, result.stdout + result.stderr).toBe(1);
      expect(result.stdout).toMatch(/switch back/);
      for (const h of hosts)
        expect(result.stdout).toMatch(
          new RegExp(`${h.name}: live ${before[0].replace('releases/', '').replaceAll('.', '\\.')}`),
        );
      for (const [i, h] of hosts.entries())
        expect(readlinkSync(path.join(h.srvDir, 'switchback/current'))).toBe(before[i]);
      for (const h of hosts) expect(readdirSync(path.join(h.srvDir, 'switchback/releases'))).toHaveLength(1);
      expect((await project.run(['deploy'])).code).toBe(0);
    } finally {
      project.cleanup();
    }
  });
});

describe('a connection cut mid-upload', () => {
  it('fails cleanly: no partial release, current untouched, and the next deploy recovers the lock', async () => {
    const h = fleet.hosts[0];
    // Large enough that the upload spans many packets.
    const project = makeProject({ format: 'json', config: { knownHosts: fleet.knownHosts }, hosts: [hostEntry(h)] });
    try {
      project.commit(
        { 'blob.bin': execFileSync('head', ['-c', '600000', '/dev/urandom']).toString('base64') },
        'big file',
      );
      expect((await project.run(['deploy'])).code).toBe(0);
      const before = releases(h);
      const liveBefore = live(h);
      // A new blob: the next deploy's delta carries all of it, so it too spans many packets.
      project.commit(
        { 'blob.bin': execFileSync('head', ['-c', '600000', '/dev/urandom']).toString('base64') },
        'another big file',
      );
      const relay = await startCuttingRelay({ address: h.address, port: h.port }, 200_000);
      const key = readFileSync(path.join(path.dirname(h.configFile), 'host_key.pub'), 'utf8').trim();
      const knownHosts = path.join(project.dir, 'known_hosts');
      writeFileSync(knownHosts, `[127.0.0.1]:${relay.port} ${key}\n`);
      project.writeConfig({ knownHosts });
      writeFileSync(
        project.configFile,
        readFileSync(project.configFile, 'utf8')
          .replace(`"host": "${h.address}"`, '"host": "127.0.0.1"')
          .replace(`"port": ${h.port}`, `"port": ${relay.port}`),
      );
      const cut = await project.run(['deploy']);
      await relay.stop();
      expect(relay.bytesSent()).toBeGreaterThan(200_000);
      expect(cut.code).toBe(1);
      expect(live(h)).toBe(liveBefore);
      expect(releases(h)).toEqual(before);
      project.writeConfig({ knownHosts: fleet.knownHosts });
      const next = await project.run(['deploy']);
      expect(next.code, next.stderr).toBe(0);
      expect(tmpEntries(h)).toEqual([]);
    } finally {
      project.cleanup();
    }
  });
});

describe('the remote lock', () => {
  it('a deployer whose clock is 10 minutes ahead neither steals a live lock nor is blocked by a dead one', async () => {
    const h = fleet.hosts[2];
    const project = makeProject({
      format: 'json',
      config: { knownHosts: fleet.knownHosts },
      hosts: [hostEntry(h, { deployTo: '/srv/locks' })],
    });
    const skewed = (args: string[]) => {
      const r = spawnSync(
        'faketime',
        [
          '-f',
          '+10m',
          process.execPath,
          path.join(import.meta.dirname, '../../node_modules/tsx/dist/cli.mjs'),
          path.join(import.meta.dirname, '../../fabfile.ts'),
          '--config',
          project.configFile,
          ...args,
        ],
        { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } },
      );
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    try {
      expect((await project.run(['deploy'])).code).toBe(0);
      // A live holder: a run paused while holding the lock.
      const resume = path.join(project.dir, 'resume');
      const holder = project.start(['deploy'], { SLIPWAY_FAULT: 'pause:before:upload', SLIPWAY_FAULT_RESUME: resume });
      await waitForOutput(holder, /@@paused before:upload/);
      const blocked = skewed(['deploy']);
      expect(blocked.code).toBe(1);
      expect(blocked.stderr).toMatch(/deploy in progress by/);
      writeFileSync(resume, '');
      expect(await new Promise((r) => holder.on('close', r))).toBe(0);

      // A dead holder on another machine: its heartbeat is 2 minutes old by the host's clock.
      const lockDir = path.join(h.srvDir, 'locks/deploy.lock');
      execFileSync('mkdir', [lockDir]);
      writeFileSync(
        `${lockDir}.owner`,
        JSON.stringify({
          user: 'bob',
          machine: 'elsewhere',
          pid: 1,
          task: 'deploy',
          startedAt: 'earlier',
          token: 'dead',
        }),
      );
      execFileSync('touch', ['-d', '2 minutes ago', lockDir]);
      const recovered = skewed(['deploy']);
      expect(recovered.code, recovered.stderr).toBe(0);
      expect(recovered.stdout).toContain('took over a stale lock of bob@elsewhere');
    } finally {
      project.cleanup();
    }
  });

  it('`unlock` prints the owner and removes the lock', async () => {
    const h = fleet.hosts[3];
    const project = makeProject({
      format: 'json',
      config: { knownHosts: fleet.knownHosts },
      hosts: [hostEntry(h, { deployTo: '/srv/unlock' })],
    });
    try {
      // A lock as a run leaves it in the deploy root it marked.
      execFileSync('mkdir', ['-p', path.join(h.srvDir, 'unlock/deploy.lock')]);
      writeFileSync(path.join(h.srvDir, 'unlock/.slipway-root'), '');
      writeFileSync(
        path.join(h.srvDir, 'unlock/deploy.lock.owner'),
        JSON.stringify({ user: 'carol', machine: 'ci', pid: 7, task: 'deploy', startedAt: 'now', token: 'x' }),
      );
      execFileSync('chown', ['-R', 'slipway:slipway', path.join(h.srvDir, 'unlock')]);
      const held = await project.run(['deploy']);
      expect(held.code).toBe(1);
      expect(held.stderr).toContain('deploy in progress by carol@ci (pid 7)');
      const result = await runCli(['--config', project.configFile, 'unlock']);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('removed the lock of carol@ci');
      expect(existsSync(path.join(h.srvDir, 'unlock/deploy.lock'))).toBe(false);
      expect((await project.run(['deploy'])).code).toBe(0);
    } finally {
      project.cleanup();
    }
  });
});

describe('connection details and fleets', () => {
  it('reads ~/.ssh/config: Host alias, HostName, Port, User, IdentityFile', async () => {
    const h = fleet.hosts[1];
    const home = path.join(fleet.dir, 'home-alias');
    execFileSync('mkdir', ['-p', path.join(home, '.ssh')]);
    writeFileSync(
      path.join(home, '.ssh/config'),
      `Host webalias\n  HostName ${h.address}\n  Port ${h.port}\n  User ${h.user}\n  IdentityFile ${fleet.clientKey}\n`,
    );
    writeFileSync(path.join(home, '.ssh/known_hosts'), readFileSync(fleet.knownHosts));
    const project = makeProject({
      format: 'json',
      hosts: [{ name: 'aliased', host: 'webalias', deployTo: '/srv/alias' }],
    });
    try {
      const result = await project.run(['deploy'], { env: { HOME: home } });
      expect(result.code, result.stderr).toBe(0);
      expect(existsSync(path.join(h.srvDir, 'alias/current'))).toBe(true);
    } finally {
      project.cleanup();
    }
  });

  it('--rolling 2 deploys in batches and stops at the first failing batch', async () => {
    const hosts = fleet.hosts.slice(0, 4);
    const project = makeProject({
      format: 'json',
      config: { knownHosts: fleet.knownHosts },
      hosts: hosts.map((h) => hostEntry(h, { deployTo: '/srv/rolling' })),
    });
    try {
      expect((await project.run(['deploy'])).code).toBe(0);
      const first = readlinkSync(path.join(hosts[0].srvDir, 'rolling/current'));
      const ok = await project.run(['deploy', '--rolling', '2']);
      expect(ok.code, ok.stderr).toBe(0);
      const batches = [...ok.stdout.matchAll(/^✓ (web\d)\s+switch/gm)].map((m) => m[1]);
      expect(batches).toHaveLength(4);
      // A before-switch hook that fails on web3 only: the first batch switched, the second did not.
      writeFileSync(path.join(hosts[2].srvDir, 'rolling/fail-here'), '');
      project.writeConfig({
        knownHosts: fleet.knownHosts,
        hooks: { beforeSwitch: [{ name: 'guard', commands: ['test ! -e ../../fail-here'] }] },
      });
      const failed = await project.run(['deploy', '--rolling', '2']);
      expect(failed.code).toBe(1);
      const links = hosts.map((h) => readlinkSync(path.join(h.srvDir, 'rolling/current')));
      expect(links[0]).toBe(links[1]);
      expect(links[2]).toBe(links[3]);
      expect(links[0]).not.toBe(links[2]);
      expect(links[0]).not.toBe(first);
    } finally {
      project.cleanup();
    }
  });

  for (const keepConnections of [0, 60]) {
    const through = keepConnections ? ', through the keepConnections broker' : '';
    it(`Ctrl-C during a remote command kills it on the host and leaves the live release${through}`, async () => {
      const h = fleet.hosts[3];
      const tmp = mkdtempSync(path.join(tmpdir(), 'slipway-ctrlc-'));
      const env = { TMPDIR: tmp, XDG_RUNTIME_DIR: '' }; // the broker under this TMPDIR, not in $XDG_RUNTIME_DIR
      const project = makeProject({
        format: 'json',
        config: { knownHosts: fleet.knownHosts, keepConnections },
        hosts: [hostEntry(h, { deployTo: '/srv/ctrlc' })],
      });
      try {
        expect((await project.run(['deploy'], { env })).code).toBe(0);
        if (keepConnections) expect(await waitForBroker(tmp)).not.toBeNull(); // so the deploy below goes through it
        const before = readlinkSync(path.join(h.srvDir, 'ctrlc/current'));
        project.writeConfig({
          knownHosts: fleet.knownHosts,
          keepConnections,
          hooks: { beforeSwitch: [{ name: 'slow', commands: ['echo started > ../../hook-started', 'sleep 4242'] }] },
        });
        const child = project.start(['deploy'], env);
        for (let i = 0; i < 200 && !existsSync(path.join(h.srvDir, 'ctrlc/hook-started')); i++)
          await new Promise((r) => setTimeout(r, 50));
        child.kill('SIGINT');
        expect(await new Promise((r) => child.on('close', r))).toBe(130);
        const sleeping = spawnSync('pgrep', ['-u', 'slipway', '-f', 'sleep 4242']);
        expect(sleeping.status).toBe(1); // no such process left
        expect(readlinkSync(path.join(h.srvDir, 'ctrlc/current'))).toBe(before);
        expect(readdirSync(path.join(h.srvDir, 'ctrlc/releases'))).toHaveLength(1);
        expect(existsSync(path.join(h.srvDir, 'ctrlc/deploy.lock'))).toBe(false);
      } finally {
        project.cleanup();
        stopBroker(tmp);
        rmSync(path.join(h.srvDir, 'ctrlc'), { recursive: true, force: true });
      }
    });
  }
});
