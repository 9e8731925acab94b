// pull's scripts (tasks/scripts/pull.ts), run for real by bash on temp deploy roots whose paths hold a space and a
// quote: pack on the source, receive into staging, publish over shared/, discard.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  discardPullScript,
  dumpScript,
  packDataScript,
  publishDataScript,
  type PullData,
  pulledItems,
  receiveDataScript,
  receiveDumpScript,
} from '../../../tasks/scripts/pull.js';
import { bash, scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('unit-pull');

function roots() {
  const dir = freshDir();
  const source = path.join(dir, "prod 'root'");
  const target = path.join(dir, "stage 'root'");
  const files = {
    'shared/uploads/a.txt': 'a\n',
    'shared/uploads/sub/b.txt': 'b\n',
    'shared/config/site.json': '{}\n',
    'shared/not-pulled.txt': 'x\n',
  };
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(source, file)), { recursive: true });
    writeFileSync(path.join(source, file), text);
  }
  mkdirSync(path.join(target, 'shared/uploads'), { recursive: true });
  writeFileSync(path.join(target, 'shared/uploads/old.txt'), 'old\n');
  return { source, target };
}

const data: PullData = {
  dirs: ['uploads'],
  files: ['config/site.json'],
  dump: { command: 'printf "dump %s\\n" "$(cat uploads/a.txt)"', file: 'dumps/db.sql' },
};

describe('pull scripts, run for real', () => {
  it('pack → receive → publish replaces each item whole and leaves nothing in tmp/', () => {
    const { source, target } = roots();
    // The tar stream as bytes: bash() decodes its output, so it goes through a file.
    const archive = path.join(path.dirname(source), 'data.tgz');
    expect(bash(`(${packDataScript(source, data).text}) > '${archive.replace(/'/g, `'\\''`)}'`).code).toBe(0);
    const received = bash(`(${receiveDataScript(target, 'p1').text}) < '${archive.replace(/'/g, `'\\''`)}'`);
    expect(received.code, received.stderr).toBe(0);
    const dump = bash(
      `(${dumpScript(source, data.dump!.command).text}) | (${receiveDumpScript(target, 'p1', 'dumps/db.sql').text})`,
    );
    expect(dump.code, dump.stderr).toBe(0);
    expect(dump.stdout.trim()).toBe(String('dump a\n'.length));
    // Nothing in shared/ has changed before the publish.
    expect(readdirSync(path.join(target, 'shared/uploads'))).toEqual(['old.txt']);
    const published = bash(publishDataScript(target, 'p1', pulledItems(data)).text);
    expect(published.code, published.stderr).toBe(0);
    expect(readdirSync(path.join(target, 'shared/uploads')).sort()).toEqual(['a.txt', 'sub']);
    expect(readFileSync(path.join(target, 'shared/uploads/sub/b.txt'), 'utf8')).toBe('b\n');
    expect(readFileSync(path.join(target, 'shared/config/site.json'), 'utf8')).toBe('{}\n');
    expect(readFileSync(path.join(target, 'shared/dumps/db.sql'), 'utf8')).toBe('dump a\n');
    expect(existsSync(path.join(target, 'shared/not-pulled.txt'))).toBe(false);
    expect(readdirSync(path.join(target, 'tmp'))).toEqual([]);
  });

  it('pack fails before writing a byte when an item is missing on the source', () => {
    const { source } = roots();
    const result = bash(packDataScript(source, { ...data, files: ['config/missing.json'] }).text);
    expect(result.code).toBe(3);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('pull: no config/missing.json in');
  });

  it('a dump command that fails fails its script, even with output before the failure', () => {
    const { source } = roots();
    const result = bash(dumpScript(source, 'echo partial; false; echo more').text);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('partial\n');
  });

  it('discard removes the staging dir and leaves shared/ alone', () => {
    const { target } = roots();
    mkdirSync(path.join(target, 'tmp/pull-p2/data/uploads'), { recursive: true });
    expect(bash(discardPullScript(target, 'p2').text).code).toBe(0);
    expect(readdirSync(path.join(target, 'tmp'))).toEqual([]);
    expect(readdirSync(path.join(target, 'shared/uploads'))).toEqual(['old.txt']);
  });
});
