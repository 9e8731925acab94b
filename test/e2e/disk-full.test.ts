// A host whose disk fills up: its /srv is a small tmpfs in its own mount namespace. Upload and
// dependency install fail cleanly; the live release is untouched; the next deploy works.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invariantViolations } from '../helpers/invariants.js';
import { makeProject, type Project, ROOT } from '../helpers/project.js';
import { type SshFleet, startSshHosts } from '../helpers/sshd.js';

// package-lock.json for ms + lodash (lodash unpacks to ~1,000 files: far more than the tmpfs holds).
const withLodash = {
  'package.json': JSON.stringify({
    name: 'hello',
    version: '1.0.0',
    type: 'module',
    dependencies: { lodash: '4.17.21', ms: '^2.1.3' },
  }),
  'package-lock.json': JSON.stringify({
    name: 'hello',
    version: '1.0.0',
    lockfileVersion: 3,
    requires: true,
    packages: {
      '': { name: 'hello', version: '1.0.0', dependencies: { lodash: '4.17.21', ms: '^2.1.3' } },
      'node_modules/lodash': {
        version: '4.17.21',
        integrity: 'sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXPs17LhbZVGedAJv8XZ1tvj5FvSg==',
        license: 'MIT',
      },
      'node_modules/ms': {
        version: '2.1.3',
        integrity: 'sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA==',
        license: 'MIT',
      },
    },
  }),
};
const original = {
  'package.json': readFileSync(path.join(ROOT, 'examples/hello/package.json'), 'utf8'),
  'package-lock.json': readFileSync(path.join(ROOT, 'examples/hello/package-lock.json'), 'utf8'),
};

let fleet: SshFleet;
let project: Project;
const root = () => path.join(fleet.hosts[0].srvDir, 'app');
beforeAll(async () => {
  fleet = await startSshHosts(1, { tmpfsBytes: 1536 * 1024 });
  const h = fleet.hosts[0];
  project = makeProject({
    format: 'json',
    config: { knownHosts: fleet.knownHosts },
    hosts: [fleet.configHost(h, '/srv/app')],
  });
  const first = await project.run(['deploy']);
  expect(first.code, first.stderr).toBe(0);
});
afterAll(async () => {
  project?.cleanup();
  await fleet?.stop();
});

const live = () => readFileSync(path.join(root(), 'revisions.log'), 'utf8').trim().split('\n').length;

describe('disk full on the host', () => {
  it('during upload: exit 1, no partial release, current untouched; the next deploy works', async () => {
    const before = { releases: execFileSync('ls', [path.join(root(), 'releases')], { encoding: 'utf8' }), log: live() };
    project.commit({ 'big.txt': randomBytes(2_500_000).toString('base64') }, 'too big');
    const result = await project.run(['deploy']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/No space left on device|upload corrupted/);
    expect(execFileSync('ls', [path.join(root(), 'releases')], { encoding: 'utf8' })).toBe(before.releases);
    expect(live()).toBe(before.log);
    expect(invariantViolations(root())).toEqual([]);
    project.commit({ 'big.txt': 'small again\n' }, 'fits');
    const next = await project.run(['deploy']);
    expect(next.code, next.stderr).toBe(0);
    expect(invariantViolations(root())).toEqual([]);
  });

  it(
    "during the dependency install: exit 1 with npm's ENOSPC, " + 'no half-built environment; the next deploy works',
    async () => {
      const releases = execFileSync('ls', [path.join(root(), 'releases')], { encoding: 'utf8' });
      project.commit(withLodash, 'a big dependency');
      const result = await project.run(['deploy']);
      expect(result.code).toBe(1);
      expect(result.stderr, result.stderr).toMatch(/dependency install failed[\s\S]*(ENOSPC|no space left)/i);
      expect(execFileSync('ls', [path.join(root(), 'releases')], { encoding: 'utf8' })).toBe(releases);
      expect(
        execFileSync('ls', ['-A', path.join(root(), 'envs')], { encoding: 'utf8' })
          .split('\n')
          .filter((e) => e.startsWith('.build')),
      ).toEqual([]);
      expect(invariantViolations(root())).toEqual([]);
      project.commit(original, 'back to ms only');
      const next = await project.run(['deploy']);
      expect(next.code, next.stderr).toBe(0);
      expect(next.stdout).toMatch(/reused envs\/node-/);
      expect(invariantViolations(root())).toEqual([]);
    },
  );
});
