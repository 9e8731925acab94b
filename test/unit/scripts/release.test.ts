// A release's own scripts (tasks/scripts/release.ts), run by a real bash on a temp deploy root: stage, discard,
// the bad mark.
import { execFileSync, spawnSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, afterEach, beforeEach, vi } from 'vitest';
import { discardScript, markBadScript, publishScript, stageScript } from '../../../tasks/scripts/release.js';
import { releaseMeta } from '../../../tasks/release/metadata.js';
import { Log } from '../../../tasks/lib/log.js';
import type { Release } from '../../../tasks/release/archive.js';
import { A, B, bash, C, makeArchive, scratchDir } from '../../helpers/unit.js';

const { scratch, freshDir } = scratchDir('unit');

afterEach(() => vi.restoreAllMocks());

describe('stageScript (upload)', () => {
  const marker = path.join(scratch, 'stage-pwned');
  const hostile = `it's $(touch ${marker}) \`touch ${marker}\`\n`;

  it('verifies the sha256 before extracting, stages under tmp/, quotes every path and value', () => {
    const spec = {
      deployTo: "/srv/my app's",
      id: A,
      sha256: 'f'.repeat(64),
      bytes: 1234,
      files: [{ name: 'nginx.conf', content: hostile, secret: false }],
      shared: { dirs: ['logs'], files: ['config/app.json'] },
    };
    const text = stageScript(spec).text;
    expect(text.split('\n')[0]).toBe('set -eu');
    expect(text.indexOf('sha256sum -c')).toBeGreaterThan(-1);
    expect(text.indexOf('sha256sum -c')).toBeLessThan(text.indexOf('tar -xzf'));
    expect(text).toContain(`mkdir '/srv/my app'\\''s/tmp/${A}'`);
    expect(text).not.toContain(`/releases/${A}`); // nothing appears under releases/ while staging
    // Rendered files come on stdin after the archive, never on the command line (where `ps` shows them).
    expect(text).toContain(`head -c 1234 > '/srv/my app'\\''s/tmp/${A}.tar.gz'`);
    expect(text).toContain(`head -c ${Buffer.byteLength(hostile)} > '/srv/my app'\\''s/tmp/${A}/.slipway/nginx.conf'`);
    expect(text).not.toContain('touch');
    expect(text).toContain(`ln -s ../../shared/logs '/srv/my app'\\''s/tmp/${A}/logs'`);
    expect(text).toContain(`ln -s ../../../shared/config/app.json '/srv/my app'\\''s/tmp/${A}/config/app.json'`);
  });

  it('run for real: extracts, writes files literally, links shared items, leaves failed-* work alone', () => {
    const root = path.join(freshDir(), "my app's root");
    mkdirSync(path.join(root, 'tmp/failed-x'), { recursive: true });
    mkdirSync(path.join(root, 'tmp/leftover-of-a-dead-run'), { recursive: true });
    const { archive, sha256 } = makeArchive(freshDir(), { 'server.js': 'console.log(1)\n' });
    const secret = 'token=planted-secret\n';
    const files = [
      { name: 'nginx.conf', content: hostile, secret: false },
      { name: 'app.env', content: secret, secret: true },
    ];
    const spec = {
      deployTo: root,
      id: A,
      sha256,
      bytes: archive.length,
      files,
      shared: { dirs: ['logs'], files: ['config/app.json'] },
    };
    const result = bash(stageScript(spec).text, Buffer.concat([archive, Buffer.from(hostile), Buffer.from(secret)]));
    expect(result.code, result.stderr).toBe(0);
    const staged = path.join(root, 'tmp', A);
    expect(readFileSync(path.join(staged, 'server.js'), 'utf8')).toBe('console.log(1)\n');
    expect(readFileSync(path.join(staged, '.slipway/nginx.conf'), 'utf8')).toBe(hostile);
    expect(lstatSync(path.join(staged, '.slipway/nginx.conf')).mode & 0o777).toBe(0o644);
    expect(readFileSync(path.join(staged, '.slipway/app.env'), 'utf8')).toBe(secret);
    expect(lstatSync(path.join(staged, '.slipway/app.env')).mode & 0o777).toBe(0o600); // it holds a secret
    expect(existsSync(marker)).toBe(false);
    expect(readlinkSync(path.join(staged, 'logs'))).toBe('../../shared/logs');
    expect(readlinkSync(path.join(staged, 'config/app.json'))).toBe('../../../shared/config/app.json');
    expect(lstatSync(path.join(root, 'shared/config/app.json')).mode & 0o777).toBe(0o600); // created empty and private
    expect(readdirSync(path.join(root, 'tmp')).sort()).toEqual([A, 'failed-x']);
    expect(readdirSync(path.join(root, 'releases'))).toEqual([]);
  });

  it('run for real with a wrong checksum: exits 1 saying so, nothing staged', () => {
    const root = path.join(freshDir(), 'root');
    const { archive } = makeArchive(freshDir(), { 'server.js': 'x' });
    const result = bash(
      stageScript({
        deployTo: root,
        id: A,
        sha256: '0'.repeat(64),
        bytes: archive.length,
        files: [],
        shared: { dirs: [], files: [] },
      }).text,
      archive,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('upload corrupted: sha256 of the received archive does not match');
    expect(readdirSync(path.join(root, 'tmp'))).toEqual([]);
  });

  it('run for real with a rendered file cut short: exits 1 saying so, nothing staged', () => {
    const root = path.join(freshDir(), 'root');
    const { archive, sha256 } = makeArchive(freshDir(), { 'server.js': 'x' });
    const files = [{ name: 'nginx.conf', content: 'server { listen 8080; }\n', secret: false }];
    const spec = { deployTo: root, id: A, sha256, bytes: archive.length, files, shared: { dirs: [], files: [] } };
    const result = bash(stageScript(spec).text, Buffer.concat([archive, Buffer.from('server { lis')]));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('upload corrupted: a rendered file arrived incomplete');
    expect(readdirSync(path.join(root, 'tmp'))).toEqual([]);
  });
});

describe('stageScript: configs the live release holds the same', () => {
  it('are copied from it on the host (known by their sha256); only the changed ones come on stdin, checked', () => {
    const root = path.join(freshDir(), 'root');
    const same = 'server { listen 8080; }\n';
    mkdirSync(path.join(root, 'releases', B, '.slipway'), { recursive: true });
    writeFileSync(path.join(root, 'releases', B, '.slipway/nginx.conf'), same);
    execFileSync('ln', ['-s', `releases/${B}`, path.join(root, 'current')]);
    const { archive, sha256 } = makeArchive(freshDir(), { 'server.js': 'x' });
    const changed = '[program:hello]\ncommand=node server.js\n';
    const files = [
      { name: 'nginx.conf', content: same, secret: false },
      { name: 'supervisor.conf', content: changed, secret: false },
    ];
    const spec = { deployTo: root, id: A, sha256, bytes: archive.length, files, shared: { dirs: [], files: [] } };
    const result = bash(
      stageScript({ ...spec, reused: ['nginx.conf'] }).text,
      Buffer.concat([archive, Buffer.from(changed)]),
    );
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(path.join(root, 'tmp', A, '.slipway/nginx.conf'), 'utf8')).toBe(same);
    expect(readFileSync(path.join(root, 'tmp', A, '.slipway/supervisor.conf'), 'utf8')).toBe(changed);
    // All of them the live release's: nothing but the archive on stdin.
    writeFileSync(path.join(root, 'releases', B, '.slipway/supervisor.conf'), changed);
    const all = bash(stageScript({ ...spec, id: C, reused: ['nginx.conf', 'supervisor.conf'] }).text, archive);
    expect(all.code, all.stderr).toBe(0);
    expect(readFileSync(path.join(root, 'tmp', C, '.slipway/supervisor.conf'), 'utf8')).toBe(changed);
  });
});

describe('discardScript, run for real', () => {
  it('discard removes a release that never went live, never the live one; --keep-failed moves it aside', () => {
    const root = path.join(freshDir(), 'root');
    for (const id of [A, B]) mkdirSync(path.join(root, 'releases', id), { recursive: true });
    mkdirSync(path.join(root, 'tmp', C), { recursive: true });
    // A delta cut short (a full disk) leaves its work files: discard removes them too.
    for (const work of ['delta.tar.gz', 'delta.skip', 'delta.kept', 'manifest', 'manifest.list'])
      writeFileSync(path.join(root, 'tmp', `${C}.${work}`), 'partial');
    execFileSync('ln', ['-s', `releases/${A}`, path.join(root, 'current')]);
    expect(bash(discardScript(root, A, false).text).code).toBe(0); // live: untouched
    expect(bash(discardScript(root, B, false).text).code).toBe(0); // published, never live: gone
    expect(readdirSync(path.join(root, 'releases'))).toEqual([A]);
    const kept = bash(discardScript(root, C, true).text);
    expect(kept.stdout.trim()).toBe(`${root}/tmp/failed-${C}`);
    expect(readdirSync(path.join(root, 'tmp'))).toEqual([`failed-${C}`]);
  });
});

// Issue 9 item 20: the archive carries the environment's .env; while it arrives, no other local user may read it.
describe('stageScript: the archive while it arrives', () => {
  let root: string;

  beforeEach(() => {
    root = path.join(mkdtempSync(path.join(tmpdir(), 'slipway-stage-')), 'app');
  });

  afterEach(() => rmSync(path.dirname(root), { recursive: true, force: true }));

  const mode = (file: string) => (statSync(file).mode & 0o777).toString(8);

  it('the archive being received is 0600 in a 0700 tmp/, also in a root whose tmp/ was 0755', async () => {
    const src = path.join(path.dirname(root), 'src');
    mkdirSync(src);
    writeFileSync(path.join(src, 'server.js'), '// app\n');
    const archive = await new Promise<Buffer>((resolve) => {
      const tar = spawn('tar', ['-czf', '-', '-C', src, '.']);
      const parts: Buffer[] = [];
      tar.stdout.on('data', (d: Buffer) => parts.push(d));
      tar.on('close', () => resolve(Buffer.concat(parts)));
    });
    mkdirSync(path.join(root, 'tmp'), { recursive: true, mode: 0o755 });
    const id = '2026.01.01-00.00.00-abc1234';
    const sha256 = createHash('sha256').update(archive).digest('hex');
    const text = stageScript({
      deployTo: root,
      id,
      sha256,
      bytes: archive.length,
      files: [],
      shared: { files: [], dirs: [] },
    }).text;
    const bash = spawn('bash', ['-c', text], { stdio: ['pipe', 'inherit', 'inherit'] });
    const done = new Promise<number | null>((resolve) => bash.on('close', resolve));
    // Half the archive, then look at the file while the host is still receiving it.
    bash.stdin.write(archive.subarray(0, archive.length >> 1));
    const receiving = path.join(root, 'tmp', `${id}.tar.gz`);
    for (let i = 0; i < 200 && !existsSync(receiving); i++) await new Promise((r) => setTimeout(r, 10));
    expect(mode(path.join(root, 'tmp'))).toBe('700');
    expect(mode(receiving)).toBe('600');
    bash.stdin.end(archive.subarray(archive.length >> 1));
    expect(await done).toBe(0);
    expect(existsSync(path.join(root, 'tmp', id, 'server.js'))).toBe(true);
  });
});

describe('markBadScript', () => {
  const release = {
    id: '2026.01.01-00.00.00-abcdef0',
    archive: { ref: 'main', commit: 'abcdef0123' },
    deployedAt: '2026-01-01T00:00:00.000Z',
  } as unknown as Release;

  it('keeps the reason off the command line (it comes on stdin), redacted before it is cut to 300 characters', () => {
    new Log({ json: false, secrets: ['reason-s3cret-unit-value'] });
    const reason = `${'x'.repeat(290)} reason-s3cret-unit-value`;
    const mark = markBadScript('/srv/app', release, null, reason);
    expect(mark.script.text).not.toContain('xxxx');
    const meta = JSON.parse(mark.stdin);
    expect(meta.reason).toBe(`${'x'.repeat(290)} ***`);
    const root = path.join(scratch, 'mark');
    mkdirSync(path.join(root, 'releases', release.id, '.slipway'), { recursive: true });
    const onDisk = markBadScript(root, release, null, 'why');
    const run = spawnSync('bash', ['-c', onDisk.script.text], { input: onDisk.stdin });
    expect(run.status, String(run.stderr)).toBe(0);
    const written = readFileSync(path.join(root, 'releases', release.id, '.slipway/release.json'), 'utf8');
    expect(JSON.parse(written)).toMatchObject({ status: 'bad', reason: 'why' });
  });

  it('keeps the deployedAt the release was published with: marking it bad later is no new deploy', () => {
    const root = freshDir();
    const meta = path.join(root, 'releases', release.id, '.slipway/release.json');
    mkdirSync(path.join(root, 'tmp', release.id, '.slipway'), { recursive: true });
    mkdirSync(path.join(root, 'releases'));
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(new Date('2026-01-01T00:00:05Z'));
      execFileSync('bash', ['-c', publishScript(root, releaseMeta(release, null)).text]);
      const published = JSON.parse(readFileSync(meta, 'utf8')).deployedAt;
      vi.setSystemTime(new Date('2026-01-01T00:10:00Z')); // the health check fails ten minutes on
      const mark = markBadScript(root, release, null, 'health check failed');
      expect(spawnSync('bash', ['-c', mark.script.text], { input: mark.stdin }).status).toBe(0);
      expect(JSON.parse(readFileSync(meta, 'utf8'))).toMatchObject({ status: 'bad', deployedAt: published });
    } finally {
      vi.useRealTimers();
    }
  });
});
