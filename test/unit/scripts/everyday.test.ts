// The everyday tasks' shell (tasks/scripts/everyday.ts), run by bash against real files.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { raw } from '../../../tasks/lib/sh.js';
import { commandWords, inLiveRelease, logFiles, logsScript } from '../../../tasks/scripts/everyday.js';
import { bash, scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('everyday');

describe('inLiveRelease', () => {
  it('runs the command in `current`, and fails saying so when nothing is live', () => {
    const dir = freshDir();
    mkdirSync(path.join(dir, 'releases', 'r1'), { recursive: true });
    symlinkSync('releases/r1', path.join(dir, 'current'));
    const ok = bash(inLiveRelease(path.join(dir, 'current'), raw('pwd -P')).text);
    expect(ok.stdout.trim()).toBe(path.join(dir, 'releases', 'r1'));
    const none = bash(inLiveRelease(path.join(dir, 'nothing', 'current'), raw('echo ran')).text);
    expect(none.code).toBe(1);
    expect(none.stdout).toBe('');
    expect(none.stderr).toContain(`no live release: ${dir}/nothing/current does not exist (deploy first)`);
  });
});

describe('commandWords', () => {
  it('keeps each word one argument: spaces, quotes and shell syntax are never re-read', () => {
    const dir = freshDir();
    const words = ['printf', '%s|', 'a  b', "it's", '$(touch pwned)', ';', '*'];
    const result = bash(`cd ${dir} && ${commandWords(words).text}`);
    expect(result.stdout).toBe("a  b|it's|$(touch pwned)|;|*|");
  });
});

describe('logsScript', () => {
  it('prints the last lines of each existing log after a header; @@no-logs when there is none', () => {
    const dir = freshDir();
    const files = logFiles(dir, 'app');
    expect(files).toEqual({ out: `${dir}/app.out.log`, err: `${dir}/app.err.log` });
    expect(bash(logsScript(files, 2, false).text).stdout).toBe('@@no-logs\n');
    writeFileSync(files.err, 'e1\ne2\ne3\n');
    expect(bash(logsScript(files, 2, false).text).stdout).toBe(`==> ${files.err} <==\ne2\ne3\n`);
    writeFileSync(files.out, 'o1\n');
    expect(bash(logsScript(files, 2, false).text).stdout).toBe(
      `==> ${files.out} <==\no1\n\n==> ${files.err} <==\ne2\ne3\n`,
    );
  });

  it('--follow: tail -F of both logs (one that does not exist yet too), from the last lines', () => {
    expect(logsScript({ out: '/l/a b.out.log', err: '/l/e.log' }, 5, true).text).toBe(
      "exec tail -v -n 5 -F -- '/l/a b.out.log' /l/e.log 2>/dev/null",
    );
  });
});
