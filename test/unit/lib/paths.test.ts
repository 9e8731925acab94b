// Every path slipway builds (tasks/lib/paths.ts): the deploy root's layout, the names inside a release, the
// relative links.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkRelativePath,
  COMPLETE,
  currentTarget,
  ENV_BUILD_PREFIX,
  envLinkTarget,
  FAILED_PREFIX,
  layout,
  linkFromRelease,
  RELEASE_META,
  releaseFiles,
  releaseOfCurrent,
  ROOT_MARK,
} from '../../../tasks/lib/paths.js';

describe('paths', () => {
  it("layout is Capistrano's", () => {
    const p = layout('/srv/app');
    expect([p.releases, p.current, p.shared, p.envs, p.cache, p.tmp, p.revisions]).toEqual([
      '/srv/app/releases',
      '/srv/app/current',
      '/srv/app/shared',
      '/srv/app/envs',
      '/srv/app/cache',
      '/srv/app/tmp',
      '/srv/app/revisions.log',
    ]);
    expect(p.release('X')).toBe('/srv/app/releases/X');
    expect(p.staging('X')).toBe('/srv/app/tmp/X');
    expect(p.env('node-1')).toBe('/srv/app/envs/node-1');
  });
  it(
    'every other deploy-root path comes from layout too: ' +
      'the locks, the root mark, the switch link, shared, tmp, envs',
    () => {
      const p = layout('/srv/app');
      expect([p.lock, p.lockOwner, p.lockGuard, p.rootMark, p.currentNext, p.sharedEnv]).toEqual([
        '/srv/app/deploy.lock',
        '/srv/app/deploy.lock.owner',
        '/srv/app/.deploy.lock.guard',
        `/srv/app/${ROOT_MARK}`,
        '/srv/app/.current.next',
        '/srv/app/shared/.env',
      ]);
      expect(ROOT_MARK).toBe('.slipway-root');
      expect(p.sharedItem('config/app.json')).toBe('/srv/app/shared/config/app.json');
      expect([p.archive('X'), p.failed('X'), p.purging('X'), p.purgingEnv('k')]).toEqual([
        '/srv/app/tmp/X.tar.gz',
        '/srv/app/tmp/failed-X',
        '/srv/app/tmp/purge-X',
        '/srv/app/tmp/purge-env-k',
      ]);
      expect([p.envBuild('k'), p.toolCache('npm'), p.toolCache('pip')]).toEqual([
        '/srv/app/envs/.build-k',
        '/srv/app/cache/npm',
        '/srv/app/cache/pip',
      ]);
      expect([p.serviceBackup('site', 'prev'), p.serviceBackup('program', 'none')]).toEqual([
        '/srv/app/service-backups/site.prev',
        '/srv/app/service-backups/program.none',
      ]);
      // The glob stageScript cleans with names exactly what failed() and envBuild() make.
      expect(p.failed('X')).toBe(`${p.tmp}/${FAILED_PREFIX}X`);
      expect(p.envBuild('k')).toBe(`${p.envs}/${ENV_BUILD_PREFIX}k`);
    },
  );
  it('releaseFiles names the files slipway keeps inside a release', () => {
    const f = releaseFiles('/srv/app/releases/X');
    expect([f.slipway, f.meta, f.dotenv, f.rendered('nginx.conf'), f.nginxCheck, f.env]).toEqual([
      '/srv/app/releases/X/.slipway',
      `/srv/app/releases/X/${RELEASE_META}`,
      '/srv/app/releases/X/.slipway/dotenv',
      '/srv/app/releases/X/.slipway/nginx.conf',
      '/srv/app/releases/X/.slipway/nginx-check',
      '/srv/app/releases/X/.env',
    ]);
    expect(RELEASE_META).toBe('.slipway/release.json');
    expect(COMPLETE).toBe('.complete');
  });
  it('current points to releases/<id>, relative, and reads back to the id', () => {
    expect(currentTarget('X')).toBe('releases/X');
    expect(releaseOfCurrent(currentTarget('X'))).toBe('X');
    expect(releaseOfCurrent('releases/X/')).toBe('X');
  });
  it("the release's links to shared/.env and to its environment climb out of releases/<id>", () => {
    expect(linkFromRelease('.env', 'shared')).toBe('../../shared/.env');
    expect(envLinkTarget('k', 'node_modules')).toBe('../../envs/k/node_modules');
    expect(envLinkTarget('k')).toBe('../../envs/k');
    expect(path.posix.resolve('/srv/app/releases/X', envLinkTarget('k', 'node_modules'), '..')).toBe('/srv/app/envs/k');
  });
  it('linkFromRelease climbs out of releases/<id>/<item> to the shared copy', () => {
    expect(linkFromRelease('logs', 'shared')).toBe('../../shared/logs');
    expect(linkFromRelease('config/app.json', 'shared')).toBe('../../../shared/config/app.json');
    expect(linkFromRelease('a/b/c', 'shared')).toBe('../../../../shared/a/b/c');
    // The link resolves to <deployTo>/shared/<item> from where it sits.
    for (const item of ['logs', 'config/app.json']) {
      const at = path.posix.join('/srv/app/releases/X', item);
      expect(path.posix.resolve(path.posix.dirname(at), linkFromRelease(item, 'shared'))).toBe(
        `/srv/app/shared/${item}`,
      );
    }
  });
  it('checkRelativePath refuses paths that leave the release', () => {
    for (const bad of ['../x', '/etc', '/etc/passwd', '.', '', 'a/../../b', '..', 'x/..', 'a\0b']) {
      expect(() => checkRelativePath(bad, 'shared.dirs'), JSON.stringify(bad)).toThrow(
        /shared\.dirs: ".*" must be a path inside the release/,
      );
    }
  });
  it('checkRelativePath normalises good ones', () => {
    expect(checkRelativePath('logs', 'x')).toBe('logs');
    expect(checkRelativePath('logs/', 'x')).toBe('logs');
    expect(checkRelativePath('config/./app.json', 'x')).toBe('config/app.json');
    expect(checkRelativePath('a/b/../c', 'x')).toBe('a/c');
  });
});

describe('shared paths that only start with dots', () => {
  it('accepts names like ..data and .cache while refusing ../x', async () => {
    const { checkRelativePath } = await import('../../../tasks/lib/paths.js');
    expect(checkRelativePath('..data', 'shared.dirs')).toBe('..data');
    expect(checkRelativePath('.cache/x', 'shared.dirs')).toBe('.cache/x');
    expect(() => checkRelativePath('../x', 'shared.dirs')).toThrow(/must be a path inside the release/);
    expect(() => checkRelativePath('..', 'shared.dirs')).toThrow(/must be a path inside the release/);
  });
});
