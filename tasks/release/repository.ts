// A remote repository (a git URL) as a bare mirror in the user's cache, fetched before each release is built;
// and, for a local working tree, the uncommitted changes a release will not contain.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { SlipwayError } from '../lib/errors.js';
import { secrets } from '../lib/redact.js';

const execFileP = promisify(execFile);

/** The URL with any password in it replaced, for messages (the password is also redacted from all output). */
export function displayUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^/@:]*):[^/@]*@/i, '$1:***@');
}

/**
 * Where the mirror of `url` lives: `$XDG_CACHE_HOME/slipway/repositories/<name>-<hash>.git` (default
 * `~/.cache`), one per URL, shared by every project of this user that deploys from it.
 */
export function mirrorDir(url: string, env: NodeJS.ProcessEnv = process.env): string {
  const cache =
    env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(homedir(), '.cache');
  const name =
    url
      .replace(/\/+$/, '')
      .split(/[/:]/)
      .pop()!
      .replace(/\.git$/, '')
      .replace(/[^A-Za-z0-9._-]/g, '_') || 'repository';
  const hash = createHash('sha256').update(url).digest('hex').slice(0, 12);
  return path.join(cache, 'slipway', 'repositories', `${name}-${hash}.git`);
}

/** git with the user's own credentials (ssh keys, agent, credential helpers); never waiting for a typed password. */
async function git(args: string[], what: string, url: string): Promise<void> {
  await execFileP('git', args, {
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
    env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
  }).catch((error) => {
    const detail = String(error.stderr || error.message).trim();
    throw new SlipwayError(`repository ${displayUrl(url)}: ${what} failed: ${secrets.redact(detail)}`);
  });
}

/**
 * Brings the mirror of `url` up to date (made with `git clone --mirror` the first time, `git fetch --prune`
 * after) and returns its path. Runs of this user deploying from the same URL at once take turns (a lock
 * beside the mirror), so neither sees the other's half-made mirror or fights over its refs.
 */
export async function updateMirror(url: string): Promise<string> {
  const password = /^[a-z]+:\/\/[^/@:]*:([^/@]*)@/i.exec(url)?.[1];
  if (password) {
    let decoded = password;
    try {
      decoded = decodeURIComponent(password);
    } catch {
      // Not percent-encoded as a URL should be: only the text as written is the password.
    }
    secrets.add([decoded, password]);
  }
  const dir = mirrorDir(url);
  mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 });
  const lockfile = (await import('proper-lockfile')).default;
  const release = await lockfile.lock(dir, {
    lockfilePath: `${dir}.lock`,
    realpath: false,
    stale: 120_000,
    update: 10_000,
    retries: { retries: 600, minTimeout: 200, maxTimeout: 200 },
    onCompromised: () => undefined,
  });
  try {
    if (existsSync(path.join(dir, 'HEAD'))) {
      await git(['-C', dir, 'fetch', '--prune', '--quiet', 'origin'], 'git fetch', url);
    } else {
      // Made aside and renamed into place: a clone cut short never looks like a mirror.
      const aside = `${dir}.new-${process.pid}`;
      rmSync(aside, { recursive: true, force: true });
      try {
        await git(['clone', '--mirror', '--quiet', '--', url, aside], 'git clone --mirror', url);
        rmSync(dir, { recursive: true, force: true });
        renameSync(aside, dir);
      } finally {
        rmSync(aside, { recursive: true, force: true });
      }
    }
  } finally {
    await release().catch(() => undefined);
  }
  return dir;
}

/**
 * Tracked files with uncommitted changes in a local working tree (under `subdirectory` if set): what a
 * release, built from a commit, will not contain. Empty for a bare repository or a clean tree.
 */
export async function uncommittedChanges(repository: string, subdirectory?: string): Promise<string[]> {
  const status = await execFileP(
    'git',
    [
      '--no-optional-locks',
      '-C',
      repository,
      'status',
      '--porcelain',
      '--untracked-files=no',
      '--',
      subdirectory ?? '.',
    ],
    { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
  ).catch(() => null);
  if (!status) return [];
  return status.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => line.slice(3));
}
