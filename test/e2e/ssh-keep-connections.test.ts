// keepConnections: a broker process keeps the SSH connections open between runs, so a run after the
// first opens none; it reconnects when a host's sshd restarted, exits when idle, and is not used
// from a directory others could reach. Each test gets its own TMPDIR, so its own broker.
import { chmodSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pidAlive } from '../../tasks/core/host.js';
import { brokerDirOf, brokerPid, stopBroker, waitForBroker } from '../helpers/broker.js';
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
  const run = (args: string[]) => project.run(args, { TMPDIR: tmp });
  const setUp = (keep: number) => {
    tmp = mkdtempSync(path.join(tmpdir(), 'slipway-keep-'));
    project = makeProject(
      { knownHosts: fleet.knownHosts, keepConnections: keep },
      fleet.hosts.map((h) => ({ name: h.name, host: h.address, port: h.port, user: h.user, privateKey: fleet.clientKey, deployTo: '/srv/keep' })),
    );
  };
  afterEach(() => {
    stopBroker(tmp);
    project.cleanup();
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
    expect(result.stdout).toMatch(/connecting directly, not kept open \(.* must be a directory of yours with mode 0700\)/);
    expect(brokerPid(tmp)).toBeNull();
  });
});
