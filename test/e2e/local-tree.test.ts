// The deployed tree on the local target: shared files and dirs are where README says (a missing shared
// file is created empty and private, also inside a shared dir), and a tree whose symlinks would make a
// deploy write or delete outside the release (.slipway or anything in it, a parent of a shared item)
// is refused before any host changes.
import { existsSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { git, makeProject, type Project } from '../helpers/project.js';

let project: Project | undefined;
afterEach(() => project?.cleanup());

/** Commits a symlink under app/ (git stores the link itself, not what it points to). */
function commitLink(p: Project, name: string, target: string): void {
  const file = path.join(p.dir, 'app', name);
  mkdirSync(path.dirname(file), { recursive: true });
  symlinkSync(target, file);
  git(p.dir, 'add', '--', file);
  git(p.dir, 'commit', '-qm', `link ${name}`);
}

describe('shared items', () => {
  it(
    'a missing shared file is created empty and 0600, ' +
      'on its own and inside a shared dir; its content survives redeploys',
    async () => {
      project = makeProject({
        config: { shared: { dirs: ['logs', 'storage'], files: ['config/local.json', 'storage/config.json'] } },
      });
      const first = await project.run(['deploy']);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toMatch(/upload .*created empty \(0600\): config\/local\.json, storage\/config\.json/);
      const shared = path.join(project.deployTo, 'shared');
      for (const file of ['config/local.json', 'storage/config.json']) {
        expect(lstatSync(path.join(shared, file)).isFile(), file).toBe(true);
        expect(statSync(path.join(shared, file)).mode & 0o777, file).toBe(0o600);
        expect(readFileSync(path.join(project.deployTo, 'current', file), 'utf8'), file).toBe('');
      }
      writeFileSync(path.join(shared, 'storage/config.json'), '{"kept": true}\n');
      const second = await project.run(['deploy']);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stdout).not.toContain('created empty');
      expect(readFileSync(path.join(project.deployTo, 'current/storage/config.json'), 'utf8')).toBe('{"kept": true}\n');
    },
  );

  it('a shared file that is a dangling symlink on the host fails the upload naming it', async () => {
    project = makeProject({ config: { shared: { dirs: [], files: ['config/local.json'] } } });
    mkdirSync(path.join(project.deployTo, 'shared/config'), { recursive: true });
    // A deploy root slipway made, as after a first deploy.
    writeFileSync(path.join(project.deployTo, '.slipway-root'), '');
    symlinkSync('/nonexistent/local.json', path.join(project.deployTo, 'shared/config/local.json'));
    const result = await project.run(['deploy']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /shared\/config\/local\.json is a symlink to \/nonexistent\/local\.json, which does not exist/,
    );
    expect(project.live()).toBeNull();
  });
});

describe('symlinks in the tree are refused (exit 2, naming the path), nothing written through them', () => {
  it('a tracked .slipway/dotenv symlink pointing outside: the secrets are not written there', async () => {
    project = makeProject({});
    const outside = path.join(project.dir, 'outside-dotenv');
    writeFileSync(path.join(project.dir, '.env.local'), 'TOKEN=planted-secret-value\n');
    commitLink(project, '.slipway/dotenv', outside);
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(/"\.slipway\/dotenv" is a symlink/);
    expect(existsSync(outside)).toBe(false);
    expect(project.live()).toBeNull();
  });

  it("a tracked .slipway symlink, or a rendered file's name in .slipway as a symlink, is refused", async () => {
    project = makeProject({});
    commitLink(project, '.slipway/nginx.conf', '/tmp/slipway-written-through');
    const inside = await project.run(['deploy']);
    expect(inside.code, inside.stderr).toBe(2);
    expect(inside.stderr).toMatch(/"\.slipway\/nginx\.conf" is a symlink/);
    git(project.dir, 'rm', '-rq', 'app/.slipway');
    commitLink(project, '.slipway', '/tmp');
    const dir = await project.run(['deploy']);
    expect(dir.code, dir.stderr).toBe(2);
    expect(dir.stderr).toMatch(/"\.slipway" is a symlink/);
    expect(project.live()).toBeNull();
  });

  it('a tracked data -> ../../shared/data with shared.dirs data/uploads: refused, shared user data kept', async () => {
    project = makeProject({ config: { shared: { dirs: ['data/uploads'], files: [] } } });
    expect((await project.run(['deploy'])).code).toBe(0);
    const upload = path.join(project.deployTo, 'shared/data/uploads/user-file.png');
    writeFileSync(upload, 'user data');
    commitLink(project, 'data', '../../shared/data');
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(
      /"data" is a symlink \(to \.\.\/\.\.\/shared\/data\), a parent of shared item "data\/uploads"/,
    );
    expect(readFileSync(upload, 'utf8')).toBe('user data');
  });
});
