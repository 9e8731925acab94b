// Lock-owner helpers (tasks/lock/owner.ts): whether a recorded pid is still a running process here, and reading
// the owner file.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { LockHeld, ownerDeadHere, parseOwner, pidAlive, processIdentity } from '../../../tasks/lock/owner.js';

const owner = {
  user: 'deployer',
  machine: 'box',
  pid: 4242,
  task: 'deploy',
  startedAt: '2026-01-01T00:00:00.000Z',
  token: 't',
};

/** Starts `sh` that forks a child which exits at once and is never reaped: a zombie, for as long as sh sleeps. */
async function withZombie(fn: (pid: number) => void): Promise<void> {
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const pid = Number(
      await new Promise<string>((resolve) => parent.stdout!.once('data', (d) => resolve(String(d).trim()))),
    );
    for (let i = 0; i < 100 && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); i++)
      await new Promise((r) => setTimeout(r, 10));
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
  it(
    'another pid namespace, another boot, ' +
      'or an owner that does not say (older version) is never judged dead by its pid',
    async () => {
      const child = spawn('true');
      await new Promise((resolve) => child.on('close', resolve));
      const gone = { ...here(), pid: child.pid! };
      expect(ownerDeadHere({ ...gone, pidNamespace: 'pid:[1]' })).toBe(false);
      expect(ownerDeadHere({ ...gone, bootId: 'another-boot' })).toBe(false);
      expect(ownerDeadHere({ ...owner, machine: hostname(), pid: child.pid! })).toBe(false);
    },
  );
});

describe('parseOwner and LockHeld', () => {
  it('reads an owner file; refuses garbage', () => {
    expect(parseOwner(JSON.stringify(owner))).toEqual(owner);
    for (const text of ['', '{', 'null', '{"pid":"1","user":"x"}', '{"user":"x"}', '[]'])
      expect(parseOwner(text), text).toBeNull();
  });
  it('names who holds the lock, since when, and the way out', () => {
    expect(new LockHeld('web1', owner).message).toBe(
      'deploy in progress by deployer@box (pid 4242) since 2026-01-01T00:00:00.000Z on web1; ' +
        'if that run is dead, `unlock` removes its lock',
    );
    expect(new LockHeld('web1', null).message).toContain('web1: deploy lock held (owner unknown)');
  });
});
