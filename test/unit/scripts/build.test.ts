// The build host's script (artifacts.buildOn), run for real by bash with a stand-in npm first on PATH: the tree in
// on stdin, installed, the tree back on stdout, the runtime on stderr, and its folder gone whatever happened.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildHostCheckScript,
  buildHostVerdicts,
  buildOnHostScript,
  parseBuildRuntime,
} from '../../../tasks/scripts/build.js';
import { makeArchive, scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('build-script');

/** A TMPDIR (its path with a space and a quote), a stand-in npm and the release tree as a tar.gz. */
function setUp(npm: string) {
  const dir = freshDir();
  const tmp = path.join(dir, "tmp 'dir");
  mkdirSync(tmp);
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'npm'), `#!/bin/sh\n${npm}\n`);
  chmodSync(path.join(bin, 'npm'), 0o755);
  const tree = path.join(dir, 'tree');
  mkdirSync(tree);
  const { archive } = makeArchive(tree, { 'package.json': '{}', 'package-lock.json': '{}' });
  const run = () =>
    spawnSync('bash', ['-c', buildOnHostScript().text], {
      input: archive,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, TMPDIR: tmp },
    });
  return { tmp, run };
}

describe('buildOnHostScript', () => {
  it('installs in the tree it was sent and sends the tree back; its folder is removed', () => {
    const { tmp, run } = setUp('echo "npm $*"; mkdir -p node_modules/dep && echo x > node_modules/dep/index.js');
    const result = run();
    expect(result.status, result.stderr.toString()).toBe(0);
    const listing = execFileSync('tar', ['-tzf', '-'], { input: result.stdout }).toString().split('\n');
    expect(listing).toEqual(expect.arrayContaining(['./package.json', './node_modules/dep/index.js']));
    const stderr = result.stderr.toString();
    // npm's own output goes to stderr: stdout is only the tar stream.
    expect(stderr).toContain('npm ci --omit=dev --prefer-offline --no-audit --no-fund');
    expect(parseBuildRuntime(stderr)).toEqual({
      node: execFileSync('node', ['--version']).toString().trim(),
      platform: execFileSync('bash', ['-c', 'echo "$OSTYPE $HOSTTYPE"']).toString().trim(),
    });
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('a failing npm fails the build, nothing sent back, its folder removed', () => {
    const { tmp, run } = setUp('echo "npm ERR! 404 Not Found - GET https://registry/nope" >&2; exit 1');
    const result = run();
    expect(result.status).not.toBe(0);
    expect(result.stdout.length).toBe(0);
    expect(result.stderr.toString()).toContain('npm ERR! 404 Not Found');
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('no runtime reported: null', () => {
    expect(parseBuildRuntime('@@node v20.1.0\n')).toBeNull();
  });
});

describe('buildHostCheckScript and buildHostVerdicts (check on the build host)', () => {
  const checkWith = (tmp: string) =>
    spawnSync('bash', ['-c', buildHostCheckScript().text], { env: { ...process.env, TMPDIR: tmp } }).stdout.toString();

  it('node and npm with their versions, TMPDIR writable (its probe folder removed): all ✓', () => {
    const tmp = path.join(freshDir(), "tmp 'dir");
    mkdirSync(tmp);
    const verdicts = buildHostVerdicts(checkWith(tmp), 'deploy');
    const npm = execFileSync('npm', ['--version']).toString().trim();
    expect(verdicts).toEqual([
      { name: 'build runtime', ok: true, detail: `node ${process.version}, npm ${npm}` },
      { name: 'TMPDIR', ok: true, detail: `${tmp} writable (the build's folder goes there, removed after)` },
    ]);
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('a TMPDIR the user cannot make a folder in: ✗ with its fix', () => {
    const tmp = path.join(freshDir(), 'missing');
    const [, verdict] = buildHostVerdicts(checkWith(tmp), 'deploy');
    expect(verdict).toEqual({
      name: 'TMPDIR',
      ok: false,
      detail: `${tmp} not writable by deploy: the build makes its folder there`,
      fix: `as root: chmod 1777 ${tmp} (or give deploy a writable TMPDIR in its SSH sessions)`,
    });
  });

  it('npm, or node and npm, not found: ✗ naming what is missing, with its fix', () => {
    const output = (node: string) => `@@node ${node}\n@@npm \n@@tmpdir /tmp\n@@tmpdir-writable yes\n`;
    expect(buildHostVerdicts(output('v20.1.0'), 'deploy')[0]).toEqual({
      name: 'build runtime',
      ok: false,
      detail: "npm not found on deploy's PATH over SSH: the build runs npm ci there",
      fix: 'install it on the build host (apt-get install nodejs npm)',
    });
    expect(buildHostVerdicts(output(''), 'deploy')[0]).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/^node and npm not found/),
      fix: 'install them on the build host (apt-get install nodejs npm)',
    });
  });
});
