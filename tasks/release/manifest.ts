// An artifact's manifest: what a build made (every file's path, sha256 and mode), from what (ref, commit), by whom
// and when, its dependency environment's key, and its compat level: as yodeploy's deploy_compat, the artifact
// format a slipway knows; an older slipway refuses an artifact of a level it does not know.
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { SlipwayError } from '../lib/errors.js';

/** The artifact format this slipway writes. */
export const ARTIFACT_COMPAT = 1;
/** The formats this slipway can deploy. */
export const KNOWN_COMPAT: readonly number[] = [1];

export interface ManifestFile {
  path: string;
  /** Octal permission bits, e.g. "644"; a symlink has "link" and its target instead of a sha256. */
  mode: string;
  sha256?: string;
  link?: string;
}

export interface ArtifactManifest {
  compat: number;
  id: string;
  application: string;
  /** The environment it was built for: where it sits in the store. */
  environment: string;
  ref: string;
  commit: string;
  builder: string;
  builtAt: string;
  /** The .tar.gz's checksum and size: hosts check what they fetch against them. */
  sha256: string;
  bytes: number;
  /** 'prebuilt': the dependency environment is inside, built for envKey (runtime and platform). */
  dependencies: 'host' | 'prebuilt';
  envKey: string | null;
  /** The lockfile's text: a host of another platform keys and installs its own environment from it. */
  lockfile: string | null;
  files: ManifestFile[];
}

/** An artifact that cannot be deployed: unknown compat level, bad manifest, checksums that disagree. */
export class ArtifactRefused extends SlipwayError {}

/** Every file under the tree, sorted by path. */
export async function manifestFiles(tree: string): Promise<ManifestFile[]> {
  const entries = await readdir(tree, { recursive: true, withFileTypes: true });
  const files: ManifestFile[] = [];
  for (const e of entries) {
    const full = path.join(e.parentPath, e.name);
    const rel = path.relative(tree, full).split(path.sep).join('/');
    const stat = await lstat(full);
    const mode = (stat.mode & 0o7777).toString(8);
    if (e.isSymbolicLink()) files.push({ path: rel, mode: 'link', link: await readlink(full) });
    else if (e.isFile()) {
      files.push({
        path: rel,
        mode,
        sha256: createHash('sha256')
          .update(await readFile(full))
          .digest('hex'),
      });
    }
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Reads a manifest from the store's text, refusing what this slipway cannot deploy. */
export function parseManifest(text: string, key: string): ArtifactManifest {
  let manifest: ArtifactManifest;
  try {
    manifest = JSON.parse(text) as ArtifactManifest;
  } catch {
    throw new ArtifactRefused(`artifact manifest ${key} is not JSON`);
  }
  if (typeof manifest !== 'object' || manifest === null || typeof manifest.compat !== 'number')
    throw new ArtifactRefused(`artifact manifest ${key} has no compat level`);
  if (!KNOWN_COMPAT.includes(manifest.compat)) {
    throw new ArtifactRefused(
      `artifact ${manifest.id ?? key} has compat level ${manifest.compat}; this slipway deploys levels ` +
        `${KNOWN_COMPAT.join(', ')}: upgrade slipway to deploy it`,
    );
  }
  for (const field of ['id', 'commit', 'ref', 'sha256'] as const) {
    if (typeof manifest[field] !== 'string') throw new ArtifactRefused(`artifact manifest ${key}: no ${field}`);
  }
  if (!/^[0-9a-f]{64}$/.test(manifest.sha256)) throw new ArtifactRefused(`artifact manifest ${key}: bad sha256`);
  if (!Number.isInteger(manifest.bytes)) throw new ArtifactRefused(`artifact manifest ${key}: no bytes`);
  return manifest;
}
