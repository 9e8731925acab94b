// Delta releases on real sshd hosts: web1 deploys with delta (the default), web2 the same commits in full
// (delta: false): the new release's files and modes equal a full deploy's; the base release is untouched; a base
// tampered with on the host is caught by its checksum and the archive follows; bytes per host counted by relays.
import { createHash, randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { git, makeProject, type Project } from '../helpers/project.js';
import {
  type CountingRelays,
  type SshFleet,
  startCountingRelays,
  startSshHosts,
  type TestHost,
} from '../helpers/sshd.js';

let fleet: SshFleet;
let relays: CountingRelays;
let project: Project;
const DATA_FILES = 150;

beforeAll(async () => {
  fleet = await startSshHosts(2);
  relays = await startCountingRelays(fleet);
  const [web1, web2] = relays.configHosts('/srv/hello');
  project = makeProject({
    format: 'json',
    config: {
      knownHosts: relays.knownHosts,
      environments: { delta: { hosts: [web1] }, full: { hosts: [web2], delta: false } },
      defaultEnvironment: 'delta',
    },
  });
  // A tree of some size: 150 files of 6 KB (base64 of random bytes), ≈ 0.7 MB as a .tar.gz.
  const files: Record<string, string> = {};
  for (let i = 0; i < DATA_FILES; i++) files[`app/data/f${String(i).padStart(3, '0')}.txt`] = fileText();
  project.commit('data', files);
}, 120_000);
afterAll(async () => {
  project?.cleanup();
  await relays?.stop();
  await fleet?.stop();
});

const fileText = () => `${randomBytes(4500).toString('base64')}\n`;
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const root = (h: TestHost) => path.join(h.srvDir, 'hello');
const liveDir = (h: TestHost) => path.join(root(h), readlinkSync(path.join(root(h), 'current')));
const app = (file: string) => path.join(project.dir, 'app', file);

/** Every file, link and folder of a release but slipway's own .slipway/: path, kind, mode, content or target. */
function tree(dir: string, sub = ''): string[] {
  return readdirSync(path.join(dir, sub))
    .sort()
    .filter((name) => !(sub === '' && name === '.slipway'))
    .flatMap((name) => {
      const rel = path.join(sub, name);
      const full = path.join(dir, rel);
      const st = lstatSync(full);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) return [`${rel} -> ${readlinkSync(full)}`];
      if (st.isDirectory()) return [`${rel}/ ${mode}`, ...tree(dir, rel)];
      return [`${rel} ${mode} ${sha256(full)}`];
    });
}

/** Each file of a release with its inode, modification time, mode and content hash. */
function inodes(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const rel of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const st = lstatSync(path.join(dir, rel));
    if (!st.isFile()) continue;
    out.set(rel, `${st.ino} ${st.mtimeMs} ${st.mode} ${sha256(path.join(dir, rel))}`);
  }
  return out;
}

async function deploy(env: 'delta' | 'full') {
  const result = await project.run(['--env', env, 'deploy']);
  expect(result.code, result.stderr + result.stdout).toBe(0);
  return result.stdout;
}

function commitAll(message: string) {
  git(project.dir, 'add', '-A');
  git(project.dir, 'commit', '-qm', message);
}

describe('delta releases', () => {
  it('first deploys are full; a delta with renamed, removed, added, mode-changed files and a symlink equals a full deploy', async () => {
    const [web1, web2] = fleet.hosts;
    expect(await deploy('delta')).toMatch(/upload\s+[\d.]+s\s+[\d.]+ KiB, sha256 verified/);
    await deploy('full');
    const base = liveDir(web1);
    const before = inodes(base);

    renameSync(app('data/f001.txt'), app('data/renamed.txt'));
    rmSync(app('data/f002.txt'));
    writeFileSync(app('data/added.txt'), 'new\n');
    chmodSync(app('data/f003.txt'), 0o755);
    writeFileSync(app('data/f005.txt'), fileText());
    symlinkSync('data/f004.txt', app('latest.txt'));
    commitAll('delta');

    const out = await deploy('delta');
    expect(out).toMatch(/delta from \S+ \(2 changed, 3 added, 2 removed\): [\d.]+ KiB of [\d.]+ KiB, verified/);
    await deploy('full');
    const [fresh, full] = [liveDir(web1), liveDir(web2)];
    expect(fresh).not.toBe(base);
    expect(tree(fresh)).toEqual(tree(full));
    expect(tree(fresh)).toContain('latest.txt -> data/f004.txt');
    expect(tree(fresh).find((l) => l.startsWith('data/f003.txt '))).toMatch(/^data\/f003.txt 755 /);

    // The base release: every file as it was (inode, mtime, mode, content); its unchanged files are the new
    // release's (hard links), what changed is a file of its own.
    expect(inodes(base)).toEqual(before);
    expect(statSync(path.join(fresh, 'data/f010.txt')).ino).toBe(statSync(path.join(base, 'data/f010.txt')).ino);
    for (const changed of ['data/f005.txt', 'data/f003.txt'])
      expect(statSync(path.join(fresh, changed)).ino, changed).not.toBe(statSync(path.join(base, changed)).ino);
  }, 300_000);

  it('a one-file change sends each host at most 5% of the archive (and the whole archive without delta)', async () => {
    writeFileSync(app('data/f020.txt'), fileText());
    commitAll('one file');
    const before = [relays.bytes(0), relays.bytes(1)];
    const out = await deploy('delta');
    await deploy('full');
    const kib = Number(/\(([\d.]+) KiB archive\)/.exec(out)?.[1]);
    const archive = kib * 1024;
    const [delta, full] = [relays.bytes(0) - before[0], relays.bytes(1) - before[1]];
    console.log(`one-file change: delta ${delta} bytes, full ${full} bytes, archive ${archive} bytes`);
    expect(archive).toBeGreaterThan(500 * 1024);
    expect(out).toMatch(/delta from \S+ \(1 changed, 0 added, 0 removed\)/);
    expect(delta).toBeLessThanOrEqual(archive * 0.05);
    expect(full).toBeGreaterThan(archive);
  }, 300_000);

  it('a base release changed on the host fails its checksum: the archive is uploaded in full, and the output says so', async () => {
    const [web1, web2] = fleet.hosts;
    const base = liveDir(web1);
    appendFileSync(path.join(base, 'data/f030.txt'), 'tampered\n');
    writeFileSync(app('data/f031.txt'), fileText());
    commitAll('after tampering');
    const out = await deploy('delta');
    expect(out).toMatch(/full upload: base \S+ failed verification: differs from its manifest: data\/f030.txt/);
    expect(out).toMatch(/KiB, sha256 verified/);
    await deploy('full');
    const fresh = liveDir(web1);
    expect(sha256(path.join(fresh, 'data/f030.txt'))).toBe(sha256(app('data/f030.txt')));
    expect(tree(fresh)).toEqual(tree(liveDir(web2)));
    // The tampered release is left as it is (it is not slipway's to repair), and the next deploy is a delta again.
    expect(readFileSync(path.join(base, 'data/f030.txt'), 'utf8')).toContain('tampered');
    writeFileSync(app('data/f032.txt'), fileText());
    commitAll('after the full upload');
    expect(await deploy('delta')).toMatch(/delta from \S+ \(1 changed, 0 added, 0 removed\)/);
  }, 300_000);
});
