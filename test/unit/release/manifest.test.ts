// An artifact's manifest (tasks/release/manifest.ts): its files, and the compat level an older slipway refuses.
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ARTIFACT_COMPAT, manifestFiles, parseManifest } from '../../../tasks/release/manifest.js';
import { A, scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('manifest');

const valid = {
  compat: ARTIFACT_COMPAT,
  id: A,
  commit: 'a'.repeat(40),
  ref: 'main',
  sha256: 'b'.repeat(64),
  bytes: 10,
};

describe('manifest', () => {
  it("lists every file's path, sha256 and mode, and links with their targets", async () => {
    const tree = freshDir();
    mkdirSync(path.join(tree, 'bin'));
    writeFileSync(path.join(tree, 'bin/run'), 'x');
    chmodSync(path.join(tree, 'bin/run'), 0o755);
    writeFileSync(path.join(tree, 'a.txt'), '');
    symlinkSync('bin/run', path.join(tree, 'link'));
    expect(await manifestFiles(tree)).toEqual([
      { path: 'a.txt', mode: '644', sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
      { path: 'bin/run', mode: '755', sha256: '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881' },
      { path: 'link', mode: 'link', link: 'bin/run' },
    ]);
  });

  it('reads a manifest of a known compat level', () => {
    expect(parseManifest(JSON.stringify(valid), 'k.json').id).toBe(A);
  });

  it('refuses a compat level this slipway does not know, naming it and what to do', () => {
    expect(() => parseManifest(JSON.stringify({ ...valid, compat: 2 }), 'k.json')).toThrow(
      `artifact ${A} has compat level 2; this slipway deploys levels 1: upgrade slipway to deploy it`,
    );
    expect(() => parseManifest('{}', 'k.json')).toThrow('artifact manifest k.json has no compat level');
    expect(() => parseManifest(JSON.stringify({ ...valid, sha256: 'x' }), 'k.json')).toThrow('bad sha256');
  });
});
