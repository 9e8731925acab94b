// dependencies.type 'python' on the local target: a venv built once per requirements.txt (and
// python version) into envs/<key>, linked into each release as .venv, reused while it is unchanged.
// requirements.txt lists no third-party package: this machine has no PyPI, and pip still runs.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, releaseIdOf } from '../helpers/project.js';

describe('a python app', () => {
  let project: Project;
  beforeAll(() => {
    project = makeProject({ config: { dependencies: { type: 'python' } } });
    project.commit('python app', {
      'app/requirements.txt': '# the standard library is enough\n',
      'app/app.py': 'import sys\nprint(sys.prefix)\n',
    });
  });
  afterAll(() => project?.cleanup());
  const envs = () => readdirSync(path.join(project.deployTo, 'envs')).filter((e) => !e.startsWith('.'));

  it('first deploy builds a venv in envs/<key> and links it as .venv; its python runs the app inside it', async () => {
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    expect(result.stdout).toMatch(/dependencies .*installed envs\/python-[0-9a-f]{16}/);
    const release = path.join(project.deployTo, 'releases', releaseIdOf(result.stdout));
    const [key] = envs();
    expect(readlinkSync(path.join(release, '.venv'))).toBe(`../../envs/${key}`);
    expect(existsSync(path.join(project.deployTo, 'envs', key, '.complete'))).toBe(true);
    const prefix = execFileSync(path.join(release, '.venv/bin/python'), ['app.py'], {
      cwd: release,
      encoding: 'utf8',
    }).trim();
    expect(realpathSync(prefix)).toBe(realpathSync(path.join(project.deployTo, 'envs', key)));
  });

  it('a new commit with the same requirements.txt installs nothing', async () => {
    project.commit('code only', { 'app/app.py': 'print("two")\n' });
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/dependencies .*reused envs\/python-[0-9a-f]{16}, no install/);
    expect(envs()).toHaveLength(1);
  });

  it('a changed requirements.txt builds a second environment; the older release keeps its own', async () => {
    const before = envs();
    project.commit('requirements changed', { 'app/requirements.txt': '# still nothing from PyPI\n# a second line\n' });
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/installed envs\/python-/);
    const after = envs();
    expect(after).toHaveLength(2);
    const live = readlinkSync(path.join(project.deployTo, 'current', '.venv'));
    expect(before.some((k) => live.endsWith(k))).toBe(false);
  });
});
