// The local target's lock (tasks/hosts/local-host.ts): who it names when a run loses the race, and a lost lock.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LockHeld, LockLost } from '../../../tasks/lock/owner.js';
import { LocalHost } from '../../../tasks/hosts/local-host.js';
import { sh } from '../../../tasks/lib/sh.js';

const owner = {
  user: 'deployer',
  machine: 'box',
  pid: 4242,
  task: 'deploy',
  startedAt: '2026-01-01T00:00:00.000Z',
  token: 't',
};

describe('LocalHost lock', () => {
  it('a run that loses the race by a hair names the winner, whose owner file appears just after its lock', async () => {
    const deployTo = mkdtempSync(path.join(tmpdir(), 'slipway-lock-'));
    try {
      // The winner has claimed the deploy root and made the lock directory, but not yet written who it is.
      writeFileSync(path.join(deployTo, '.slipway-root'), '');
      mkdirSync(path.join(deployTo, 'deploy.lock'));
      const winner = {
        ...owner,
        pid: process.pid,
        machine: 'winner-box',
        lockInode: statSync(path.join(deployTo, 'deploy.lock')).ino,
      };
      setTimeout(() => writeFileSync(path.join(deployTo, 'deploy.lock.owner'), JSON.stringify(winner)), 100);
      const attempt = new LocalHost('local', deployTo).lock({ ...owner, token: 'loser' });
      await expect(attempt).rejects.toBeInstanceOf(LockHeld);
      await expect(attempt).rejects.toThrow(/deploy in progress by deployer@winner-box/);
    } finally {
      rmSync(deployTo, { recursive: true, force: true });
    }
  });

  // Issue 9 item 18 on the local target: another run took the lock over while this one stalled.
  it(
    'once another run has taken the lock over, ' +
      'a command runs nothing (LockLost), and release leaves the new lock alone',
    async () => {
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
    },
  );
});

describe('LocalHost exec with stdout streamed', () => {
  it('streams stdout to the given stream (stdin from a stream too), keeps stderr and the exit code', async () => {
    const host = new LocalHost('local', tmpdir());
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (d: Buffer) => chunks.push(d));
    const ended = new Promise((resolve) => out.on('end', resolve));
    const stdin = new PassThrough();
    stdin.end(Buffer.alloc(3_000_000, 7));
    const result = await host.exec(sh`wc -c; echo oops >&2; exit 3`, { stdin, stdout: out });
    await ended;
    expect(result).toEqual({ code: 3, stdout: '', stderr: 'oops\n' });
    expect(Buffer.concat(chunks).toString().trim()).toBe('3000000');
  });
});
