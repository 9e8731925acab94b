// keepConnections: a broker process keeps the SSH connections open between runs, so a run after the
// first opens none; it reconnects when a host's sshd restarted, exits when idle or past its maximum
// age, drops a connection whose host key left known_hosts, is not used from a directory others could
// reach or swap, and is never sent key material. Each test gets its own TMPDIR, so its own broker.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pidAlive } from '../../tasks/lock/owner.js';
import { brokerDirOf, brokerPid, stopBroker, waitForBroker, xdgBrokerDirOf } from '../helpers/broker.js';
import { makeProject, type Project, releaseIdOf } from '../helpers/project.js';
import { type SshFleet, startSshHosts } from '../helpers/sshd.js';

let fleet: SshFleet;
beforeAll(async () => {
  fleet = await startSshHosts(2, { loginShell: '/bin/sh' });
});
afterAll(() => fleet?.stop());

describe('keepConnections', () => {
  let tmp: string;
  let project: Project;
  // XDG_RUNTIME_DIR would take precedence over TMPDIR: unset, so each test's TMPDIR is where its broker lives.
  let env: NodeJS.ProcessEnv = {};
  const run = (args: string[]) => project.run(args, { env: { TMPDIR: tmp, XDG_RUNTIME_DIR: '', ...env } });
  const configure = (settings: object, host: object = {}) => {
    project?.cleanup();
    project = makeProject({
      format: 'json',
      config: { knownHosts: fleet.knownHosts, ...settings },
      hosts: fleet.hosts.map((h) => ({ ...fleet.configHost(h, '/srv/keep'), ...host })),
    });
  };
  const setUp = (keep: number, settings: object = {}) => {
    tmp = mkdtempSync(path.join(tmpdir(), 'slipway-keep-'));
    env = {};
    configure({ keepConnections: keep, ...settings });
  };
  /**
   * A first run hands the hosts over; a second one (waiting for the hand-over if still opening) is served by the
   * broker.
   */
  const keepHosts = async () => {
    const first = await run(['releases']);
    expect(first.code, first.stderr).toBe(0);
    expect(await waitForBroker(tmp)).not.toBeNull();
    expect((await run(['releases'])).code).toBe(0);
  };
  afterEach(() => {
    stopBroker(tmp, xdgBrokerDirOf(path.join(tmp, 'xdg')));
    project.cleanup();
    project = undefined as never;
  });

  it('runs after the first open no connection; the results are the same; a restarted sshd is reconnected', async () => {
    setUp(60);
    // The first run connects directly while the broker starts, and hands the hosts over at its end.
    const first = await run(['deploy']);
    expect(first.code, first.stderr).toBe(0);
    expect(await waitForBroker(tmp)).not.toBeNull();
    expect((await run(['releases'])).code).toBe(0); // waits for the broker's hand-over connections if still opening
    for (const h of fleet.hosts) fleet.resetCounts(h);

    const second = await run(['deploy']);
    expect(second.code, second.stderr).toBe(0);
    const back = await run(['rollback']);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toContain(`live: ${releaseIdOf(first.stdout)}`);
    for (const h of fleet.hosts) {
      const counts = fleet.counts(h);
      expect(counts.connections, h.name).toBe(0);
      // Per run: its own requests plus one `true` that checks the kept connection is alive.
      expect(counts.execRequests, h.name).toBeLessThanOrEqual(8 + 2 + 2);
    }

    fleet.kill(fleet.hosts[0]); // its sessions too: the kept connection is gone
    await fleet.restart(fleet.hosts[0]);
    fleet.resetCounts(fleet.hosts[0]);
    const after = await run(['deploy']);
    expect(after.code, after.stderr).toBe(0);
    expect(fleet.counts(fleet.hosts[0]).connections).toBe(1);
  });

  it('the broker exits once it has had no client for keepConnections seconds, removing its socket', async () => {
    setUp(1);
    expect((await run(['releases'])).code).toBe(0);
    const pid = (await waitForBroker(tmp))!;
    expect(pid).toBeGreaterThan(0);
    for (let i = 0; i < 100 && pidAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    expect(pidAlive(pid)).toBe(false);
    expect(existsSync(path.join(brokerDirOf(tmp), 'broker.sock'))).toBe(false);
  });

  it('a broker directory others can reach is not used: a warning, and the run connects directly', async () => {
    setUp(60);
    mkdirSync(brokerDirOf(tmp), { recursive: true });
    chmodSync(brokerDirOf(tmp), 0o777);
    const result = await run(['releases']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(
      /connecting directly, not kept open \(.* must be a directory of yours with mode 0700\)/,
    );
    expect(brokerPid(tmp)).toBeNull();
  });

  it('with XDG_RUNTIME_DIR set, the broker lives in $XDG_RUNTIME_DIR/slipway, not under TMPDIR', async () => {
    setUp(60);
    const runtimeDir = path.join(tmp, 'xdg');
    mkdirSync(runtimeDir, { mode: 0o700 });
    env = { XDG_RUNTIME_DIR: runtimeDir };
    expect((await run(['releases'])).code).toBe(0);
    expect(await waitForBroker(tmp, xdgBrokerDirOf(runtimeDir))).not.toBeNull();
    expect(existsSync(brokerDirOf(tmp))).toBe(false);
  });

  it(
    'a file where the broker directory goes (/tmp/slipway-<uid>): ' +
      'a warning, and the run connects directly and succeeds',
    async () => {
      setUp(60);
      writeFileSync(brokerDirOf(tmp), '');
      const result = await run(['releases']);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(
        /connecting directly, not kept open \(.*slipway-\d+ must be a directory of yours with mode 0700\)/,
      );
    },
  );

  it(
    'an ancestor directory others can write to without the sticky bit: ' + 'a warning, and the run connects directly',
    async () => {
      setUp(60);
      chmodSync(tmp, 0o777); // whoever can write there could swap slipway-<uid> for a directory of theirs
      const result = await run(['releases']);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(
        `connecting directly, not kept open (${tmp} is writable by others without the sticky bit)`,
      );
      expect(brokerPid(tmp)).toBeNull();
    },
  );

  it('a broker socket owned by another user is refused: a warning, and the run connects directly', async () => {
    setUp(60);
    await keepHosts();
    const nobody = Number(execFileSync('id', ['-u', 'nobody']).toString());
    chownSync(path.join(brokerDirOf(tmp), 'broker.sock'), nobody, nobody);
    for (const h of fleet.hosts) fleet.resetCounts(h);
    const result = await run(['releases']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(
      `connecting directly, not kept open (${path.join(brokerDirOf(tmp), 'broker.sock')} is not a socket of yours)`,
    );
    for (const h of fleet.hosts) expect(fleet.counts(h).connections, h.name).toBe(1);
  });

  it("a process listening in the broker's place is sent no private key and no passphrase", async () => {
    const passphrase = 'kept horse battery';
    setUp(60);
    env = { KEEP_PASSPHRASE: passphrase };
    const key = path.join(tmp, 'key');
    copyFileSync(fleet.clientKey, key);
    execFileSync('ssh-keygen', ['-q', '-p', '-P', '', '-N', passphrase, '-f', key]);
    configure({ keepConnections: 60 }, { privateKey: key, passphraseEnv: 'KEEP_PASSPHRASE' });
    mkdirSync(brokerDirOf(tmp), { mode: 0o700 });
    let received = '';
    // It reads the first request and hangs up: the run fails, having said what it would say to a broker.
    const impostor = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.on('data', (d) => {
        received += d.toString();
        if (received.includes('\n')) socket.destroy();
      });
    });
    await new Promise<void>((resolve) => impostor.listen(path.join(brokerDirOf(tmp), 'broker.sock'), resolve));
    try {
      await run(['releases']);
    } finally {
      impostor.close();
    }
    expect(received).toContain(fleet.hosts[0].address); // it was asked, by host
    expect(received).not.toContain('PRIVATE KEY');
    expect(received).not.toContain(passphrase);
  });

  it(
    'a host key removed from known_hosts stops its kept connection: ' + 'the next run connects directly and is refused',
    async () => {
      setUp(60);
      const knownHosts = path.join(tmp, 'known_hosts');
      copyFileSync(fleet.knownHosts, knownHosts);
      configure({ knownHosts, keepConnections: 60 });
      await keepHosts();
      const [revoked] = fleet.hosts;
      const lines = readFileSync(knownHosts, 'utf8').split('\n');
      writeFileSync(knownHosts, lines.filter((l) => !l.startsWith(`[${revoked.address}]:${revoked.port} `)).join('\n'));
      const result = await run(['releases']);
      expect(result.code).toBe(1);
      expect(result.stdout + result.stderr).toContain(`unknown host key for [${revoked.address}]:${revoked.port}`);
    },
  );

  it(
    'kept connections live at most keepConnectionsMaxAge seconds: ' +
      'then the broker exits and the next run connects directly',
    async () => {
      setUp(60, { keepConnectionsMaxAge: 1 });
      await keepHosts();
      const pid = (await waitForBroker(tmp))!;
      for (let i = 0; i < 100 && pidAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
      expect(pidAlive(pid)).toBe(false);
      for (const h of fleet.hosts) fleet.resetCounts(h);
      const result = await run(['releases']);
      expect(result.code, result.stderr).toBe(0);
      for (const h of fleet.hosts) expect(fleet.counts(h).connections, h.name).toBe(1);
    },
  );
});
