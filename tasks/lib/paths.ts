// Capistrano's on-disk layout under a host's deploy root, and the names inside a release: every path slipway builds.
import path from 'node:path';
import { ConfigError } from './errors.js';

/** The file that marks a folder as a slipway deploy root. */
export const ROOT_MARK = '.slipway-root';
/** The marker an environment (or a half-built one) gets once its install succeeded. */
export const COMPLETE = '.complete';
/** What a release's metadata is called inside it (a shell loop over releases reads `"$r"/<this>`). */
export const RELEASE_META = '.slipway/release.json';
/** Prefixes under tmp/ and envs/: a failed release kept with --keep-failed, an environment being built. */
export const FAILED_PREFIX = 'failed-';
export const ENV_BUILD_PREFIX = '.build-';

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
    /**
     * The service configs a deploy replaced, kept until it commits (outside every directory nginx or supervisor
     * include).
     */
    serviceBackups: at('service-backups'),
    lock: at('deploy.lock'),
    lockOwner: at('deploy.lock.owner'),
    /** The file every lock transition on the host is serialised by (flock). */
    lockGuard: at('.deploy.lock.guard'),
    rootMark: at(ROOT_MARK),
    /** The link renamed over `current` at the switch. */
    currentNext: at('.current.next'),
    sharedEnv: at('shared', '.env'),
    sharedItem: (item: string) => at('shared', item),
    release: (id: string) => at('releases', id),
    /** Where a release is built before it is complete; never under releases/. */
    staging: (id: string) => at('tmp', id),
    /** The uploaded archive, beside its staging dir. */
    archive: (id: string) => at('tmp', `${id}.tar.gz`),
    /** curl's config (the artifact's URL) while a host fetches the release from the store. */
    fetchConfig: (id: string) => at('tmp', `fetch-${id}.curl`),
    failed: (id: string) => at('tmp', `${FAILED_PREFIX}${id}`),
    /** Where purge moves a release or an environment before removing it, so a cut-short purge leaves no partial one. */
    purging: (id: string) => at('tmp', `purge-${id}`),
    purgingEnv: (key: string) => at('tmp', `purge-env-${key}`),
    env: (key: string) => at('envs', key),
    envBuild: (key: string) => at('envs', `${ENV_BUILD_PREFIX}${key}`),
    toolCache: (tool: 'npm' | 'pip') => at('cache', tool),
    /** A service config a deploy replaced (`prev`), or the mark that there was none (`none`). */
    serviceBackup: (role: string, kind: 'prev' | 'none') => at('service-backups', `${role}.${kind}`),
    /** blue-green: the slots' sockets, the live link nginx connects through, and the slots' state. */
    run: at('run'),
    slotSocket: (slot: string) => at('run', `${slot}.sock`),
    liveSocket: at('run', 'live.sock'),
    liveSocketNext: at('run', '.live.sock.next'),
    slotState: at('run', 'state.json'),
    /** listen: 'port': the upstream nginx includes, naming the live slot's port. */
    upstream: at('run', 'upstream.conf'),
    /** The programs file being composed before it is installed. */
    programsNext: at('run', '.programs.next'),
  };
}

/** The files slipway keeps inside a release dir (staged or published; on the host or the local tree). */
export function releaseFiles(releaseDir: string) {
  const slipway = `${releaseDir}/.slipway`;
  return {
    slipway,
    meta: `${releaseDir}/${RELEASE_META}`,
    /** The env file on its way to shared/.env. */
    dotenv: `${slipway}/dotenv`,
    /** A rendered template, e.g. nginx.conf. */
    rendered: (name: string) => `${slipway}/${name}`,
    nginxCheck: `${slipway}/nginx-check`,
    /** The release's .env: a link to shared/.env. */
    env: `${releaseDir}/.env`,
  };
}

/** What `current` points to: relative, so the deploy root can move. */
export const currentTarget = (id: string) => `releases/${id}`;

/** The release id `current` points to (the inverse of currentTarget). */
export const releaseOfCurrent = (link: string) => link.replace(/^releases\//, '').replace(/\/$/, '');

/** The relative link target from a release to its environment (or a folder in it): ../../envs/<key>[/<sub>]. */
export const envLinkTarget = (key: string, sub?: string) => ['..', '..', 'envs', key, ...(sub ? [sub] : [])].join('/');

/** A repository-relative path for shared files and dirs: no absolute paths, no `..`. */
export function checkRelativePath(value: string, what: string): string {
  if (!isPathInRelease(value)) throw new ConfigError(`${what}: "${value}" ${PATH_IN_RELEASE}`);
  return path.posix.normalize(value).replace(/\/$/, '');
}

export const PATH_IN_RELEASE = 'must be a path inside the release, like "logs" or "config/app.json"';

/** A relative path that stays inside the release (the config's shared items and hook cwd; checked at load). */
export function isPathInRelease(value: string): boolean {
  const normal = path.posix.normalize(value);
  return !(
    path.posix.isAbsolute(value) ||
    normal === '..' ||
    normal.startsWith('../') ||
    normal === '.' ||
    value.includes('\0')
  );
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

/**
 * A repository given as a URL, kept as written (ssh://, https://, http://, git://, file://, or scp-like
 * user@host:path); anything else is a local path, resolved from the project root.
 */
export function isRemoteRepository(repository: string): boolean {
  return /^(ssh|https?|git|file):\/\//.test(repository) || /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:/.test(repository);
}
