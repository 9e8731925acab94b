// Lock-owner helpers of tasks/core/host.ts: whether a recorded pid is still a running process, and
// reading the owner file (a stale lock is taken over only when its owner is dead, so both matter);
// and who the local lock names when a run loses the race for it.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LockHeld, LockLost, ownerDeadHere, parseOwner, pidAlive, processIdentity } from '../../tasks/lock/owner.js';
import { LocalHost } from '../../tasks/hosts/local-host.js';
import { lockAll } from '../../tasks/fleet/lock-all.js';
import { sh } from '../../tasks/lib/sh.js';

const owner = { user: 'deployer', machine: 'box', pid: 4242, task: 'deploy', startedAt: '2026-01-01T00:00:00.000Z', token: 't' };

/** Starts `sh` that forks a child which exits at once and is never reaped: a zombie, for as long as sh sleeps. */
async function withZombie(fn: (pid: number) => void): Promise<void> {
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const pid = Number(await new Promise<string>((resolve) => parent.stdout!.once('data', (d) => resolve(String(d).trim()))));
    for (let i = 0; i < 100 && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); i++) await new Promise((r) => setTimeout(r, 10));
    expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toMatch(/^\d+ \(sleep\) Z /);
    fn(pid);
  } finally {
    parent.kill('SIGKILL');
  }
}

describe('pidAlive', () => {
  it('this process is alive; a pid that exited is not', async () => {
    expect(pidAlive(process.pid)).toBe(true);
    const child = spawn('true');
    await new Promise((resolve) => child.on('close', resolve));
    expect(pidAlive(child.pid!)).toBe(false);
  });
  it('a process of another user (pid 1) counts as alive', () => {
    expect(pidAlive(1)).toBe(true);
  });
  // A deploy killed with SIGKILL whose parent died too stays a zombie until PID 1 reaps it, which in
  // containers (and on this machine) takes a while or never happens: it holds no lock and runs nothing.
  it('a zombie (exited, not yet reaped) is not alive', async () => {
    await withZombie((pid) => expect(pidAlive(pid)).toBe(false));
  });
});

// Issue 9 item 19: a pid is only meaningful on the same machine, boot and pid namespace.
describe('ownerDeadHere', () => {
  const here = () => ({ ...owner, machine: hostname(), pid: process.pid, ...processIdentity() });
  it('a live owner is not dead; one of this namespace whose pid is gone is', async () => {
    expect(ownerDeadHere(here())).toBe(false);
    const child = spawn('true');
    await new Promise((resolve) => child.on('close', resolve));
    expect(ownerDeadHere({ ...here(), pid: child.pid! })).toBe(true);
  });
  it('a pid that now belongs to a process started at another time is dead (the pid was reused)', () => {
    expect(ownerDeadHere({ ...here(), startTime: '1' })).toBe(true);
  });
  it('another pid namespace, another boot, or an owner that does not say (older version) is never judged dead by its pid', async () => {
    const child = spawn('true');
    await new Promise((resolve) => child.on('close', resolve));
    const gone = { ...here(), pid: child.pid! };
    expect(ownerDeadHere({ ...gone, pidNamespace: 'pid:[1]' })).toBe(false);
    expect(ownerDeadHere({ ...gone, bootId: 'another-boot' })).toBe(false);
    expect(ownerDeadHere({ ...owner, machine: hostname(), pid: child.pid! })).toBe(false);
  });
});

describe('parseOwner and LockHeld', () => {
  it('reads an owner file; refuses garbage', () => {
    expect(parseOwner(JSON.stringify(owner))).toEqual(owner);
    for (const text of ['', '{', 'null', '{"pid":"1","user":"x"}', '{"user":"x"}', '[]']) expect(parseOwner(text), text).toBeNull();
  });
  it('names who holds the lock, since when, and the way out', () => {
    expect(new LockHeld('web1', owner).message).toBe('deploy in progress by deployer@box (pid 4242) since 2026-01-01T00:00:00.000Z on web1; if that run is dead, `unlock` removes its lock');
    expect(new LockHeld('web1', null).message).toContain('web1: deploy lock held (owner unknown)');
  });
});

describe('LocalHost lock', () => {
  it('a run that loses the race by a hair names the winner, whose owner file appears just after its lock', async () => {
    const deployTo = mkdtempSync(path.join(tmpdir(), 'slipway-lock-'));
    try {
      // The winner has claimed the deploy root and made the lock directory, but not yet written who it is.
      writeFileSync(path.join(deployTo, '.slipway-root'), '');
      mkdirSync(path.join(deployTo, 'deploy.lock'));
      const winner = { ...owner, pid: process.pid, machine: 'winner-box', lockInode: statSync(path.join(deployTo, 'deploy.lock')).ino };
      setTimeout(() => writeFileSync(path.join(deployTo, 'deploy.lock.owner'), JSON.stringify(winner)), 100);
      const attempt = new LocalHost('local', deployTo).lock({ ...owner, token: 'loser' });
      await expect(attempt).rejects.toBeInstanceOf(LockHeld);
      await expect(attempt).rejects.toThrow(/deploy in progress by deployer@winner-box/);
    } finally {
      rmSync(deployTo, { recursive: true, force: true });
    }
  });

  // Issue 9 item 18 on the local target: another run took the lock over while this one stalled.
  it('once another run has taken the lock over, a command runs nothing (LockLost), and release leaves the new lock alone', async () => {
    const deployTo = mkdtempSync(path.join(tmpdir(), 'slipway-lock-'));
    const lockDir = path.join(deployTo, 'deploy.lock');
    try {
      const host = new LocalHost('local', deployTo);
      const held = await host.lock({ ...owner, token: 'mine' });
      expect((await host.exec(sh`echo ran`)).stdout).toBe('ran\n');
      rmSync(lockDir, { recursive: true });
      mkdirSync(lockDir);
      writeFileSync(`${lockDir}.owner`, JSON.stringify({ ...owner, token: 'theirs' }));
      await expect(host.exec(sh`touch ${path.join(deployTo, 'changed')}`)).rejects.toBeInstanceOf(LockLost);
      await expect(held.release(sh`touch ${path.join(deployTo, 'changed')}`)).rejects.toBeInstanceOf(LockLost);
      expect(existsSync(path.join(deployTo, 'changed'))).toBe(false);
      expect(existsSync(lockDir)).toBe(true);
      expect(JSON.parse(readFileSync(`${lockDir}.owner`, 'utf8')).token).toBe('theirs');
    } finally {
      rmSync(deployTo, { recursive: true, force: true });
    }
  });
});

describe('lockAll on several hosts', () => {
  // In-memory hosts, not sshd: the interleaving that made two simultaneous runs each take some
  // hosts (so both failed) is forced here, which real servers only do now and then.
  function fakeFleet(names: string[]) {
    const holders = new Map<string, string>();
    return names.map((name) => ({
      name,
      async lock(o: typeof owner) {
        // Run "a" reaches the hosts in order, run "b" in reverse: without an order, they cross.
        const delay = (o.task === 'a' ? names.indexOf(name) : names.length - names.indexOf(name)) * 10;
        await new Promise((r) => setTimeout(r, delay));
        const holder = holders.get(name);
        if (holder) throw new LockHeld(name, { ...owner, task: holder });
        holders.set(name, o.task);
        return { owner: o, output: '', release: async () => void holders.delete(name) };
      },
    }));
  }

  it('of two runs started at the same moment, exactly one gets every host and the other names it', async () => {
    const hosts = fakeFleet(['web1', 'web2', 'web3', 'web4', 'web5']) as unknown as Parameters<typeof lockAll>[0];
    const results = await Promise.allSettled([lockAll(hosts, 'a'), lockAll(hosts, 'b')]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((refused.reason as Error).message).toMatch(/^[ab] in progress by deployer@box/);
  });
});
