// Capistrano's on-disk layout under a host's deploy root.
import path from 'node:path';

export function layout(deployTo: string) {
  const at = (...parts: string[]) => path.posix.join(deployTo, ...parts);
  return {
    root: deployTo,
    releases: at('releases'),
    current: at('current'),
    shared: at('shared'),
    envs: at('envs'),
    cache: at('cache'),
    tmp: at('tmp'),
    revisions: at('revisions.log'),
    /** The service configs a deploy replaced, kept until it commits (outside every directory nginx or supervisor include). */
    serviceBackups: at('service-backups'),
    release: (id: string) => at('releases', id),
    /** Where a release is built before it is complete; never under releases/. */
    staging: (id: string) => at('tmp', id),
    failed: (id: string) => at('tmp', `failed-${id}`),
    env: (key: string) => at('envs', key),
  };
}

export type Layout = ReturnType<typeof layout>;

/** A repository-relative path for shared files and dirs: no absolute paths, no `..`. */
export function checkRelativePath(value: string, what: string): string {
  const normal = path.posix.normalize(value);
  if (path.posix.isAbsolute(value) || normal === '..' || normal.startsWith('../') || normal === '.' || value.includes('\0')) {
    throw new Error(`${what}: "${value}" must be a path inside the release, like "logs" or "config/app.json"`);
  }
  return normal.replace(/\/$/, '');
}

/** The relative link target from releases/<id>/<item> to <other>/<item>, e.g. ../../shared/logs. */
export function linkFromRelease(item: string, other: string): string {
  const ups = item.split('/').length + 1;
  return [...Array<string>(ups).fill('..'), other, item].join('/');
}

/**
 * The shared items, checked, and those that get their own link in a release: an item inside a
 * shared dir is reached through that dir's link (linking it too would replace the shared file
 * with a link to itself).
 */
export function sharedItems(shared: { files: string[]; dirs: string[] }) {
  const dirs = shared.dirs.map((d) => checkRelativePath(d, 'shared.dirs'));
  const files = shared.files.map((f) => checkRelativePath(f, 'shared.files'));
  const linked = [...dirs, ...files].filter((item) => !dirs.some((d) => item.startsWith(`${d}/`)));
  return { dirs, files, linked };
}
