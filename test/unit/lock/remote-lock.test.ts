// The remote lock's scripts, run by a real bash against a temp deploy root (the host side of an SSH lock).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LockOwner } from '../../../tasks/lock/owner.js';
import {
  acquireScript,
  breakScript,
  LOCK_LOST_STATUS,
  lockGuardScript,
  releaseScript,
  STALE_SECONDS,
} from '../../../tasks/lock/remote-lock.js';
import type { Shell } from '../../../tasks/lib/sh.js';
import { sh } from '../../../tasks/lib/sh.js';

const owner = (token: string, task = 'deploy'): LockOwner => ({
  user: 'alice',
  machine: 'laptop',
  pid: 4242,
  task,
  startedAt: '2026-01-01T00:00:00Z',
  token,
});
let root: string;
const bash = (script: Shell) => execFileSync('bash', ['-c', script.text], { encoding: 'utf8' });

beforeEach(() => {
  root = path.join(mkdtempSync(path.join(tmpdir(), 'slipway-lock-')), 'app');
});
afterEach(() => rmSync(path.dirname(root), { recursive: true, force: true }));

describe('remote lock scripts', () => {
  it('takes a free lock, records the owner, and runs the command after it', () => {
    const out = bash(acquireScript(root, owner('t1'), '', sh`echo inspected`));
    expect(out).toMatch(/^@@acquired$/m);
    expect(out).toMatch(/^@@then\ninspected$/m);
    expect(JSON.parse(readFileSync(`${root}/deploy.lock.owner`, 'utf8')).token).toBe('t1');
  });

  it('refuses a held lock, naming its owner, and does not run the command', () => {
    bash(acquireScript(root, owner('t1')));
    const out = bash(acquireScript(root, owner('t2', 'rollback'), '', sh`echo inspected`));
    expect(out).toMatch(/^@@held \{.*"token":"t1"/m);
    expect(out).not.toContain('inspected');
    expect(JSON.parse(readFileSync(`${root}/deploy.lock.owner`, 'utf8')).token).toBe('t1');
  });

  it('takes over a lock whose heartbeat is older than the stale limit by the host clock', () => {
    bash(acquireScript(root, owner('t1')));
    execFileSync('touch', ['-d', `@${Math.floor(Date.now() / 1000) - STALE_SECONDS - 5}`, `${root}/deploy.lock`]);
    const out = bash(acquireScript(root, owner('t2')));
    expect(out).toMatch(/^@@recovered \{.*"token":"t1"/m);
    expect(out).toMatch(/^@@acquired$/m);
    expect(JSON.parse(readFileSync(`${root}/deploy.lock.owner`, 'utf8')).token).toBe('t2');
  });

  it('takes over a fresh lock only with its dead owner token', () => {
    bash(acquireScript(root, owner('t1')));
    expect(bash(acquireScript(root, owner('t2'), 'not-t1'))).toMatch(/^@@held/m);
    expect(bash(acquireScript(root, owner('t2'), 't1'))).toMatch(/^@@acquired$/m);
  });

  it('never releases a lock that is not ours; releases ours and keeps the final command exit status', () => {
    bash(acquireScript(root, owner('t1')));
    bash(releaseScript(root, 't2'));
    expect(existsSync(`${root}/deploy.lock`)).toBe(true);
    let status = 0;
    try {
      bash(releaseScript(root, 't1', sh`exit 7`));
    } catch (error) {
      status = (error as { status: number }).status;
    }
    expect(status).toBe(7);
    expect(existsSync(`${root}/deploy.lock`)).toBe(false);
    expect(existsSync(`${root}/deploy.lock.owner`)).toBe(false);
  });

  it('a final command under set -e stops at its first failure (it did not, inside `( … ) ||`)', () => {
    bash(acquireScript(root, owner('t1')));
    let result: { status: number; stdout: string } = { status: 0, stdout: '' };
    try {
      bash(releaseScript(root, 't1', sh`set -eu; false; echo ran-on`));
    } catch (error) {
      result = error as { status: number; stdout: string };
    }
    expect(result.status).toBe(1);
    expect(String(result.stdout)).not.toContain('ran-on');
    expect(existsSync(`${root}/deploy.lock`)).toBe(false);
  });

  it('breaks any lock, printing who held it', () => {
    bash(acquireScript(root, owner('t1')));
    expect(bash(breakScript(root))).toContain('"token":"t1"');
    expect(existsSync(`${root}/deploy.lock`)).toBe(false);
  });

  // Issue 9 item 18: every changing command of a run that holds the lock goes behind this guard.
  it(
    'the guard lets a command run only while the lock is ours, ' + 'and stops it with the reserved status otherwise',
    () => {
      bash(acquireScript(root, owner('t1')));
      const guarded = (token: string) =>
        execFileSync('bash', ['-c', `${lockGuardScript(root, token).text}\necho ran`], { encoding: 'utf8' });
      expect(guarded('t1')).toBe('ran\n');
      let failure: { status: number; stdout: string; stderr: string } | undefined;
      try {
        guarded('t2');
      } catch (error) {
        failure = error as typeof failure;
      }
      expect(failure?.status).toBe(LOCK_LOST_STATUS);
      expect(String(failure?.stdout)).not.toContain('ran');
      expect(String(failure?.stderr)).toContain('@@lock-lost');
      bash(releaseScript(root, 't1'));
      expect(() => guarded('t1')).toThrow();
    },
  );

  it('a final command given to release does not run when the lock is no longer ours', () => {
    bash(acquireScript(root, owner('t2')));
    let status = 0;
    try {
      bash(releaseScript(root, 't1', sh`touch ${`${root}/changed`}`));
    } catch (error) {
      status = (error as { status: number }).status;
    }
    expect(status).toBe(LOCK_LOST_STATUS);
    expect(existsSync(`${root}/changed`)).toBe(false);
    expect(JSON.parse(readFileSync(`${root}/deploy.lock.owner`, 'utf8')).token).toBe('t2');
  });

  // Issue 9 item 22: the lock round trip is the first thing a task does in deployTo.
  describe('deploy root check', () => {
    it('a folder that does not exist or is empty becomes a marked deploy root', () => {
      expect(bash(acquireScript(root, owner('t1')))).toMatch(/^@@acquired$/m);
      expect(existsSync(`${root}/.slipway-root`)).toBe(true);
      const empty = `${root}-empty`;
      mkdirSync(empty);
      expect(bash(acquireScript(empty, owner('t1')))).toMatch(/^@@acquired$/m);
      expect(existsSync(`${empty}/.slipway-root`)).toBe(true);
    });

    it('a non-empty folder without the mark is refused and left exactly as it was', () => {
      mkdirSync(`${root}/tmp`, { recursive: true });
      writeFileSync(`${root}/tmp/keep`, '');
      const out = bash(acquireScript(root, owner('t1'), '', sh`touch ${`${root}/then-ran`}`));
      expect(out).toMatch(/^@@not-deploy-root$/m);
      expect(out).not.toMatch(/@@acquired/);
      expect(readdirSync(root).sort()).toEqual(['tmp']);
      expect(readdirSync(`${root}/tmp`)).toEqual(['keep']);
      expect(bash(breakScript(root))).toMatch(/^@@not-deploy-root$/m);
      expect(readdirSync(root).sort()).toEqual(['tmp']);
    });

    it('a deploy root of an older slipway (releases/ and revisions.log) is adopted and marked', () => {
      mkdirSync(`${root}/releases`, { recursive: true });
      writeFileSync(`${root}/revisions.log`, '');
      expect(bash(acquireScript(root, owner('t1')))).toMatch(/^@@acquired$/m);
      expect(existsSync(`${root}/.slipway-root`)).toBe(true);
    });
  });
});
