// Deploys on the local target, end to end: the real CLI, a real git repository, real `npm ci`.
import { existsSync, lstatSync, readFileSync, readlinkSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeProject, releaseIdOf } from '../helpers/project.js';

const lock = (deps: Record<string, string>, packages: Record<string, unknown>) =>
  JSON.stringify({ name: 'hello', version: '1.0.0', lockfileVersion: 3, requires: true, packages: { '': { name: 'hello', version: '1.0.0', dependencies: deps }, ...packages } }, null, 2);

describe('deploy on the local target', () => {
  const project = makeProject({ keepReleases: 5 });
  afterAll(() => project.cleanup());
  const envs = () => readdirSync(path.join(project.deployTo, 'envs')).filter((e) => !e.startsWith('.'));
  let first: string;

  it('first deploy: a complete release, a relative current link, an environment, metadata and a revisions line', async () => {
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr).toBe(0);
    first = releaseIdOf(result.stdout);
    expect(first).toMatch(/^\d{4}\.\d{2}\.\d{2}-\d{2}\.\d{2}\.\d{2}-[0-9a-f]{7}$/);
    expect(project.releases()).toEqual([first]);
    expect(readlinkSync(path.join(project.deployTo, 'current'))).toBe(`releases/${first}`);
    const release = path.join(project.deployTo, 'releases', first);
    expect(existsSync(path.join(release, 'server.js'))).toBe(true);
    expect(readlinkSync(path.join(release, 'node_modules'))).toMatch(/^\.\.\/\.\.\/envs\/node-[0-9a-f]+\/node_modules$/);
    expect(existsSync(path.join(release, 'node_modules/ms/package.json'))).toBe(true);
    expect(lstatSync(path.join(release, 'logs')).isSymbolicLink()).toBe(true);
    const meta = JSON.parse(readFileSync(path.join(release, '.slipway/release.json'), 'utf8'));
    expect(meta).toMatchObject({ id: first, ref: 'HEAD', status: 'ok' });
    expect(meta.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(project.revisions()).toHaveLength(1);
    expect(project.revisions()[0]).toContain(`deploy ${first}`);
    expect(readdirSync(path.join(project.deployTo, 'tmp'))).toEqual([]);
  });

  it('redeploy with an unchanged lockfile installs nothing: the same environment is linked', async () => {
    const [env] = envs();
    const inode = statSync(path.join(project.deployTo, 'envs', env)).ino;
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/dependencies .*reused envs\/node-/);
    expect(result.stdout).not.toMatch(/installed envs/);
    expect(envs()).toEqual([env]);
    expect(statSync(path.join(project.deployTo, 'envs', env)).ino).toBe(inode);
    expect(project.live()).not.toBe(first);
    expect(project.releases()).toHaveLength(2);
  });

  it('a changed lockfile builds a new environment, from the npm cache in <deployTo>/cache', async () => {
    const before = envs();
    const ms = JSON.parse(readFileSync(path.join(project.dir, 'app/package-lock.json'), 'utf8')).packages['node_modules/ms'];
    project.commit({
      'package.json': JSON.stringify({ name: 'hello', version: '1.0.0', type: 'module', dependencies: { ms: '^2.1.3' }, description: 'changed' }),
      'package-lock.json': lock({ ms: '^2.1.3' }, { 'node_modules/ms': { ...ms, license: 'MIT', dev: false } }),
    });
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/installed envs\/node-/);
    expect(envs().filter((e) => !before.includes(e))).toHaveLength(1);
    expect(readdirSync(path.join(project.deployTo, 'cache/npm')).length).toBeGreaterThan(0);
  });

  it('seven deploys with keepReleases 5 leave five releases, the newest live; purge drops unused environments', async () => {
    for (let i = 0; i < 4; i++) expect((await project.run(['deploy'])).code).toBe(0);
    const releases = project.releases();
    expect(releases).toHaveLength(5);
    expect(project.live()).toBe(releases[4]);
    expect(releases).not.toContain(first);
    // The first two releases used the first environment; once both are gone, so is it.
    expect(envs()).toHaveLength(1);
  });

  it('`releases` lists every release with the live one marked, and --json parses', async () => {
    const text = await project.run(['releases']);
    expect(text.code).toBe(0);
    const live = project.live()!;
    expect(text.stdout).toContain(`* ${live}`);
    for (const id of project.releases()) expect(text.stdout).toContain(id);
    const json = await project.run(['--json', 'releases']);
    const body = JSON.parse(json.stdout);
    expect(body.ok).toBe(true);
    const rows = body.tasks[0].hosts.local.releases as Array<{ id: string; live: boolean }>;
    expect(rows.filter((r) => r.live).map((r) => r.id)).toEqual([live]);
    expect(rows).toHaveLength(5);
  });

  it('--dry-run prints the commands and changes nothing', async () => {
    const before = project.releases();
    const result = await project.run(['--dry-run', 'deploy']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('would run:');
    expect(result.stdout).toContain('sha256sum');
    expect(project.releases()).toEqual(before);
    expect(project.revisions()).toHaveLength(7);
  });

  it('`check` reports the host reachable, writable and unlocked; `purge` applies keepReleases', async () => {
    const check = await project.run(['check']);
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout).toMatch(/writable, unlocked/);
    writeFileSync(project.configFile, readFileSync(project.configFile, 'utf8').replace('"keepReleases": 5', '"keepReleases": 2'));
    const purge = await project.run(['purge']);
    expect(purge.code, purge.stderr).toBe(0);
    expect(project.releases()).toHaveLength(2);
    expect(project.releases()).toContain(project.live());
  });
});
