// The delta scripts (tasks/scripts/delta.ts), run for real by bash: the host's manifest of a tree is the text the
// deployer computes for it; a delta assembled from a base equals the new tree, leaving the base as it was; a base
// changed since its manifest, or without one, is refused naming why.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { manifestText, planDelta, releaseManifest, sha256Text } from '../../../tasks/release/delta.js';
import { manifestFiles } from '../../../tasks/release/manifest.js';
import {
  DELTA_REFUSED,
  MANIFEST_KEPT,
  receiveDeltaScript,
  treeManifestScript,
  verifyManifestScript,
} from '../../../tasks/scripts/delta.js';
import { A, B, bash, scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('delta');
const SKIP = ['.slipway', '.env', 'node_modules', 'logs'];

function writeTree(dir: string, files: Record<string, string | { link: string } | { text: string; mode: number }>) {
  for (const [name, value] of Object.entries(files)) {
    const full = path.join(dir, name);
    mkdirSync(path.dirname(full), { recursive: true });
    if (typeof value === 'string') writeFileSync(full, value);
    else if ('link' in value) symlinkSync(value.link, full);
    else {
      writeFileSync(full, value.text);
      chmodSync(full, value.mode);
    }
  }
}

const expected = async (dir: string) => manifestText(releaseManifest(await manifestFiles(dir), SKIP));

const OLD = {
  'server.js': 'old server',
  'lib/a.js': 'a',
  'lib/b c.js': 'b',
  'bin/run': { text: '#!/bin/sh\n', mode: 0o755 },
  'gone.txt': 'gone',
  'latest.txt': { link: 'lib/a.js' },
  'logs/.keep': '',
  '.slipway/dotenv': 'SECRET=1',
};
const NEW = {
  'server.js': 'new server',
  'lib/a.js': 'a',
  'lib/b c.js': 'b',
  'bin/run': { text: '#!/bin/sh\n', mode: 0o644 },
  'added/deep/x.txt': 'x',
  'latest.txt': { link: 'lib/b c.js' },
  'logs/.keep': '',
};

describe('treeManifestScript', () => {
  it("prints the deployer's manifest text for the same tree (modes, links, spaces, overlays left out)", async () => {
    const dir = path.join(freshDir(), "a tree's");
    writeTree(dir, { ...OLD, 'node_modules/m/i.js': 'm', 'é/ü.txt': 'u', 'a.b': '1', a: { text: '2', mode: 0o600 } });
    const out = path.join(freshDir(), 'manifest');
    const result = bash(treeManifestScript(dir, out, SKIP).text);
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(await expected(dir));
    expect(readFileSync(out, 'utf8')).toContain('latest.txt\tlink\tlib/a.js\n');
  });
});

/** A deploy root whose release A holds OLD with its manifest kept, and the delta to NEW packed from `next`. */
async function setup() {
  const dir = freshDir();
  const root = path.join(dir, "deploy root's");
  const base = path.join(root, 'releases', A);
  writeTree(base, OLD);
  mkdirSync(path.join(root, 'tmp', B), { recursive: true });
  const oldText = await expected(base);
  writeFileSync(path.join(base, '.slipway/manifest'), oldText);
  const next = path.join(dir, 'next');
  writeTree(next, NEW);
  const newText = await expected(next);
  const plan = planDelta(
    releaseManifest(await manifestFiles(base), SKIP),
    releaseManifest(await manifestFiles(next), SKIP),
  );
  const tar = execFileSync('tar', ['-czf', '-', '-C', next, '--no-recursion', ...plan.send]);
  const skipText = plan.skip.map((p) => `${p}\n`).join('');
  const delta = {
    base: A,
    baseSha256: sha256Text(oldText),
    bytes: tar.length,
    sha256: createHash('sha256').update(tar).digest('hex'),
    skipBytes: Buffer.byteLength(skipText),
  };
  const run = () => {
    const command = `set -eu\n${receiveDeltaScript(root, B, delta).text}\n${
      verifyManifestScript(root, B, { sha256: sha256Text(newText), skip: SKIP }, delta).text
    }`;
    return bash(command, Buffer.concat([tar, Buffer.from(skipText)]));
  };
  return { root, base, staged: path.join(root, 'tmp', B), next, newText, run };
}

describe('receiveDeltaScript + verifyManifestScript', () => {
  it('assembles the new tree from hard links to the base and the tar, verifies it, keeps its manifest', async () => {
    const { base, staged, next, newText, run } = await setup();
    const before = statSync(path.join(base, 'server.js'));
    const result = run();
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(MANIFEST_KEPT);
    expect(await expected(staged)).toBe(await expected(next));
    expect(readFileSync(path.join(staged, '.slipway/manifest'), 'utf8')).toBe(newText);
    expect(readFileSync(path.join(staged, '.slipway/manifest.sha256'), 'utf8').trim()).toBe(sha256Text(newText));
    // Unchanged files are the base's inodes; the base's own changed files are untouched.
    expect(statSync(path.join(staged, 'lib/a.js')).ino).toBe(statSync(path.join(base, 'lib/a.js')).ino);
    expect(statSync(path.join(staged, 'bin/run')).ino).not.toBe(statSync(path.join(base, 'bin/run')).ino);
    expect(statSync(path.join(base, 'bin/run')).mode & 0o777).toBe(0o755);
    expect(readFileSync(path.join(base, 'server.js'), 'utf8')).toBe('old server');
    expect(statSync(path.join(base, 'server.js')).mtimeMs).toBe(before.mtimeMs);
    expect(existsSync(path.join(staged, 'gone.txt'))).toBe(false);
    expect(existsSync(path.join(staged, 'logs'))).toBe(false); // an overlay: the stage script links it
  });

  it('a base file changed since its manifest: refused, naming it, nothing staged', async () => {
    const { base, staged, run } = await setup();
    writeFileSync(path.join(base, 'lib/a.js'), 'tampered');
    const result = run();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `${DELTA_REFUSED} base ${A} failed verification: differs from its manifest: lib/a.js`,
    );
    expect(existsSync(staged)).toBe(false);
  });

  it('a base file removed, or a base without its manifest: refused', async () => {
    const first = await setup();
    execFileSync('rm', [path.join(first.base, 'lib/a.js')]);
    expect(first.run().stderr).toContain(`${DELTA_REFUSED} base ${A} failed verification: files of it are missing`);
    const second = await setup();
    execFileSync('rm', [path.join(second.base, '.slipway/manifest')]);
    expect(second.run().stderr).toContain(`${DELTA_REFUSED} base ${A} has no manifest, or it changed`);
  });
});
