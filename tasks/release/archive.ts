// Builds the release archive once per run, locally: `git archive` of the ref (submodules included,
// restricted to the subdirectory), packed as one tar.gz with its sha256.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  createReadStream,
  lstatSync,
  readdirSync,
  readlinkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ResolvedConfig } from '../config/types.js';
import { ConfigError } from '../lib/errors.js';
import { isRemoteRepository, releaseFiles, sharedItems } from '../lib/paths.js';
import { displayUrl, uncommittedChanges, updateMirror } from './repository.js';
import type { RenderedFile } from './templates.js';

const execFileP = promisify(execFile);

export interface ReleaseArchive {
  ref: string;
  commit: string;
  file: string;
  sha256: string;
  bytes: number;
  /** The dependency lockfile's text (package-lock.json or requirements.txt), null when there is none. */
  lockfile: string | null;
  /** A local working tree's tracked files with uncommitted changes (the release has the commit's version). */
  uncommitted: string[];
  /** The unpacked release tree the archive was packed from (until dispose): what a delta is made from. */
  tree?: string;
  dispose(): void;
}

async function git(cwd: string, args: string[]) {
  return execFileP('git', ['-C', cwd, ...args], { maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }).catch((error) => {
    throw new Error(String(error.stderr || error.message).trim());
  });
}

/** `shown`: how messages name the repository (a remote one's URL rather than its mirror's path). */
export async function resolveCommit(repository: string, ref: string, shown = repository): Promise<string> {
  if (!existsSync(repository)) throw new ConfigError(`repository not found: ${repository}`);
  const inside = await git(repository, ['rev-parse', '--git-dir']).catch(() => null);
  if (!inside) throw new ConfigError(`not a git repository: ${repository}; set "repository" to the path of one`);
  if (ref.startsWith('-')) throw new ConfigError(`unknown ref "${ref}" in ${shown}`);
  const found = await git(repository, [
    'rev-parse',
    '--verify',
    '--quiet',
    '--end-of-options',
    `${ref}^{commit}`,
  ]).catch(() => null);
  if (!found) throw new ConfigError(`unknown ref "${ref}" in ${shown}: not a branch, tag or commit there`);
  return found.stdout.trim();
}

export async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Submodules (mode 160000 entries) under the subdirectory, with the commit each is pinned to. */
async function submodules(repository: string, commit: string, subdirectory?: string) {
  const { stdout } = await git(repository, [
    'ls-tree',
    '-r',
    '-z',
    commit,
    ...(subdirectory ? ['--', subdirectory] : []),
  ]);
  return stdout
    .split('\0')
    .map((entry) => /^160000 commit ([0-9a-f]+)\t(.+)$/.exec(entry))
    .filter((m): m is RegExpExecArray => m !== null)
    .map(([, sha, where]) => ({ sha, where }));
}

/**
 * Refuses (exit 2) a tree with symlinks a deploy would write or delete through: `.slipway` or
 * anything in it (the env file and the rendered configs are written there), and a parent of a
 * shared item (its link replaces the item, whatever the parent points to: say, the shared data).
 */
function refuseLinks(tree: string, config: ResolvedConfig, what: string): void {
  const linkTarget = (rel: string) => {
    const file = path.join(tree, rel);
    return lstatSync(file, { throwIfNoEntry: false })?.isSymbolicLink() ? readlinkSync(file) : null;
  };
  const found: string[] = [];
  const slipway = linkTarget('.slipway');
  if (slipway !== null)
    found.push(
      `".slipway" is a symlink (to ${slipway}): slipway writes the release's env file and configs in that folder`,
    );
  else if (existsSync(path.join(tree, '.slipway'))) {
    for (const entry of readdirSync(path.join(tree, '.slipway'), { recursive: true, encoding: 'utf8' })) {
      const target = linkTarget(path.join('.slipway', entry));
      if (target !== null)
        found.push(
          `".slipway/${entry}" is a symlink (to ${target}): slipway writes files in .slipway/, never through a link`,
        );
    }
  }
  for (const item of sharedItems(config.shared).linked) {
    const parents = item
      .split('/')
      .slice(0, -1)
      .map((_, i, parts) => parts.slice(0, i + 1).join('/'));
    for (const parent of parents) {
      const target = linkTarget(parent);
      if (target === null) continue;
      found.push(
        `"${parent}" is a symlink (to ${target}), a parent of shared item "${item}": ` +
          `make it a folder in the repository, or share "${parent}"`,
      );
    }
  }
  if (found.length) throw new ConfigError(`refusing the release tree of ${what}:\n  ${found.join('\n  ')}`);
}

export interface ArchiveOptions {
  /** Put .env.<environment> in the archive (a deploy's own archive); never in a store's artifact. */
  dotenv?: boolean;
  /** Runs on the release tree before it is packed (an artifact's prebuilt environment and manifest). */
  prepare?: (tree: string, lockfile: string | null) => Promise<void>;
}

export async function buildArchive(
  config: ResolvedConfig,
  { dotenv: withDotenv = true, prepare }: ArchiveOptions = {},
): Promise<ReleaseArchive> {
  const remote = isRemoteRepository(config.repository);
  // A remote repository: its mirror in the user's cache, fetched now (repository.ts).
  const repository = remote ? await updateMirror(config.repository) : config.repository;
  const sub = config.subdirectory?.replace(/^\/+|\/+$/g, '');
  const [commit, uncommitted] = await Promise.all([
    resolveCommit(repository, config.ref, remote ? displayUrl(config.repository) : repository),
    remote ? [] : uncommittedChanges(repository, sub),
  ]);
  if (sub) {
    const kind = await git(repository, ['cat-file', '-t', `${commit}:${sub}`]).catch(() => null);
    if (kind?.stdout.trim() !== 'tree')
      throw new ConfigError(`subdirectory "${sub}" is not a folder of ${config.ref} (${commit.slice(0, 7)})`);
  }
  const work = mkdtempSync(path.join(tmpdir(), 'slipway-release-'));
  const dispose = () => rmSync(work, { recursive: true, force: true });
  try {
    const tree = path.join(work, 'tree');
    const tar = (cwd: string, treeish: string, into: string) =>
      execFileP('bash', [
        '-c',
        'set -o pipefail; mkdir -p "$3" && git -C "$1" -c tar.umask=022 archive --format=tar "$2" | tar -x -C "$3"',
        '_',
        cwd,
        treeish,
        into,
      ]);
    await tar(repository, sub ? `${commit}:${sub}` : commit, tree);
    for (const { sha, where } of await submodules(repository, commit, sub)) {
      if (remote) throw new ConfigError(`submodule ${where}: a remote repository's submodules are not fetched (yet)`);
      const checkout = path.join(repository, where);
      if (!existsSync(path.join(checkout, '.git')))
        throw new Error(`submodule ${where} is not checked out; run git submodule update --init`);
      await tar(checkout, sha, path.join(tree, sub ? path.relative(sub, where) : where));
    }
    refuseLinks(tree, config, `${config.ref} (${commit.slice(0, 7)})`);
    // The app's environment travels inside the archive (mode 0600), never on a command line; written
    // as a new file (O_EXCL), so never through a link.
    const dotenv = path.join(config.projectRoot, `.env.${config.environment}`);
    if (withDotenv && existsSync(dotenv)) {
      const files = releaseFiles(tree);
      mkdirSync(files.slipway, { recursive: true });
      rmSync(files.dotenv, { force: true });
      writeFileSync(files.dotenv, readFileSync(dotenv), { mode: 0o600, flag: 'wx' });
    }
    const lockName =
      config.dependencies.type === 'node'
        ? 'package-lock.json'
        : config.dependencies.type === 'python'
          ? 'requirements.txt'
          : null;
    const lockPath = lockName ? path.join(tree, lockName) : null;
    if (lockPath && !existsSync(lockPath)) {
      throw new ConfigError(
        `dependencies.type is "${config.dependencies.type}" but ${lockName} is not in the release ` +
          `(${sub ?? 'repository root'} at ${commit.slice(0, 7)})`,
      );
    }
    const lockfile = lockPath ? readFileSync(lockPath, 'utf8') : null;
    await prepare?.(tree, lockfile);
    const file = path.join(work, 'release.tar.gz');
    await execFileP('tar', ['-czf', file, '-C', tree, '.']);
    return {
      ref: config.ref,
      commit,
      file,
      sha256: await sha256Of(file),
      bytes: statSync(file).size,
      lockfile,
      uncommitted,
      tree,
      dispose,
    };
  } catch (error) {
    dispose();
    throw error;
  }
}

export interface Release {
  id: string;
  archive: ReleaseArchive;
  /** Per host name: the rendered templates and the dependency environment key. */
  files: Map<string, RenderedFile[]>;
  envKeys: Map<string, string | null>;
  /** When this release was made: its metadata says so on every host, and a later bad mark keeps it. */
  deployedAt: string;
  /** Set when the hosts fetch the release from the artifact store instead of receiving the archive. */
  artifact?: ReleaseArtifact;
}

/** A release the hosts fetch from the store (archive.file is then empty: nothing is uploaded). */
export interface ReleaseArtifact {
  /** The archive's key in the store, recorded in the release's metadata. */
  key: string;
  /** How hosts get it: a path they read (dir store) or a URL for curl. */
  source: { path: string } | { url: string };
  /** The key of the dependency environment built into it, if prebuilt. */
  prebuiltEnvKey: string | null;
  /** .env.<environment>: sent to each host beside the rendered files (never in the artifact). */
  dotenv?: string;
}
