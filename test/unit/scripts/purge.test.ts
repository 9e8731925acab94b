// The purge script (tasks/scripts/purge.ts), run for real: by bash on a temp deploy root, and as a deploy user
// beside a program running as another.
import { spawnSync, type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, chmodSync, chownSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, afterEach } from 'vitest';
import { purgedIn, purgeScript } from '../../../tasks/scripts/purge.js';
import { raw } from '../../../tasks/lib/sh.js';
import { A, B, bash, C, scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('unit');

describe('purgeScript, run for real', () => {
  it('purge renames each release out of releases/ before deleting it, and says what it removed', () => {
    const root = path.join(freshDir(), 'root');
    for (const id of [A, B, C]) mkdirSync(path.join(root, 'releases', id), { recursive: true });
    mkdirSync(path.join(root, 'envs/node-1'), { recursive: true });
    mkdirSync(path.join(root, 'tmp'));
    const text = purgeScript(root, { releases: [A, B], envs: ['node-1'] }).text;
    expect(text).toContain(`mv -T ${root}/releases/${A} ${root}/tmp/purge-${A}`);
    const result = bash(text);
    expect(result.code, result.stderr).toBe(0);
    expect(purgedIn(result.stdout)).toEqual([A, B]);
    expect(readdirSync(path.join(root, 'releases'))).toEqual([C]);
    expect(readdirSync(path.join(root, 'envs'))).toEqual([]);
    expect(readdirSync(path.join(root, 'tmp'))).toEqual([]);
  });
  it('purge keeps a release a running process works in', () => {
    const root = path.join(freshDir(), 'root');
    mkdirSync(path.join(root, 'releases', A), { recursive: true });
    mkdirSync(path.join(root, 'tmp'));
    const result = bash(
      `(cd ${root}/releases/${A} && sleep 5) & pid=$!; sleep 0.2; ` +
        `${purgeScript(root, { releases: [A], envs: [] }).text}; kill $pid`,
    );
    expect(result.stdout).toContain(`kept ${A}: a running process works in it`);
    expect(readdirSync(path.join(root, 'releases'))).toEqual([A]);
  });
  it('purge keeps a release a running process works in a folder of, and removes the one beside it', () => {
    const root = path.join(freshDir(), 'root');
    for (const id of [A, B]) mkdirSync(path.join(root, 'releases', id, 'logs'), { recursive: true });
    mkdirSync(path.join(root, 'tmp'));
    const result = bash(
      `(cd ${root}/releases/${A}/logs && sleep 5) & pid=$!; sleep 0.2; ` +
        `${purgeScript(root, { releases: [A, B], envs: [] }).text}; kill $pid`,
    );
    expect(result.stdout).toContain(`kept ${A}: a running process works in it`);
    expect(purgedIn(result.stdout)).toEqual([B]);
    expect(readdirSync(path.join(root, 'releases'))).toEqual([A]);
  });
});

// purgeScript run for real by one unprivileged user while "the program" (a sleep) runs as another,
// whose /proc/<pid>/cwd the first cannot read: as the deploy user and an app running as runAs.
// Needs root to start both (the tests run as root); setpriv drops to uids 65534 and 65533.
describe('purge and a program running as another user', () => {
  const DEPLOY = ['--reuid=65534', '--regid=65534', '--clear-groups'];

  const APP = ['--reuid=65533', '--regid=65533', '--clear-groups'];

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  let program: ChildProcess | undefined;

  let root = '';

  afterEach(() => {
    program?.kill('SIGKILL');
    rmSync(path.dirname(root), { recursive: true, force: true });
  });

  function deployRoot(): string {
    root = path.join(mkdtempSync(path.join(tmpdir(), 'slipway-purge-')), 'root');
    chmodSync(path.dirname(root), 0o755);
    for (const dir of [`releases/${A}`, `releases/${B}`, 'tmp']) mkdirSync(path.join(root, dir), { recursive: true });
    for (const dir of ['', 'releases', `releases/${A}`, `releases/${B}`, 'tmp'])
      chownSync(path.join(root, dir), 65534, 65534);
    return root;
  }

  /** The program as another user, working in a release; `supervisorctl pid` is played by echo. */
  async function startProgram(release: string): Promise<string> {
    program = spawn('setpriv', [...APP, 'sleep', '30'], { cwd: path.join(root, 'releases', release), stdio: 'ignore' });
    await sleep(100);
    return `echo ${program.pid}`;
  }

  function purgeAsDeployUser(pidCommand: string) {
    const result = spawnSync(
      'setpriv',
      [...DEPLOY, 'bash', '-c', purgeScript(root, { releases: [A], envs: [] }, raw(pidCommand)).text],
      { encoding: 'utf8' },
    );
    expect(result.status, result.stderr).toBe(0);
    return result.stdout;
  }

  it(
    'started before the last switch (it may still work in an older release): ' +
      'nothing is removed, and the output says why',
    async () => {
      deployRoot();
      const pid = await startProgram(A);
      await sleep(100);
      symlinkSync(`releases/${B}`, path.join(root, 'current'));
      const output = purgeAsDeployUser(pid);
      expect(output).toMatch(
        new RegExp(`^kept ${A}: the program \\(pid \\d+, another user\\) has run since before the last switch`, 'm'),
      );
      expect(readdirSync(path.join(root, 'releases'))).toEqual([A, B]);
    },
  );

  it('started after the last switch (it works in the live release): the old one is removed', async () => {
    deployRoot();
    symlinkSync(`releases/${B}`, path.join(root, 'current'));
    await sleep(200);
    const output = purgeAsDeployUser(await startProgram(B));
    expect(purgedIn(output)).toEqual([A]);
  });
});
