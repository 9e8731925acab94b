// Delta releases on the deployer: the new tree's manifest (cached for later deltas) and, per base release, the
// small tar.gz of what changed since it, packed from the tree the release archive was made of.
import { execFile } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ResolvedConfig } from '../config/types.js';
import type { ReleaseArchive } from './archive.js';
import { sha256Of } from './archive.js';
import {
  type DeltaPlan,
  deltaSafe,
  isUnder,
  manifestText,
  overlays,
  parseManifestText,
  planDelta,
  releaseManifest,
  sha256Text,
} from './delta.js';
import { type ManifestFile, manifestFiles } from './manifest.js';
import { loadManifest, saveManifest } from './manifest-cache.js';

const execFileP = promisify(execFile);

export interface TreeManifest {
  tree: string;
  files: ManifestFile[];
  text: string;
  sha256: string;
  /** The overlays: left out of the manifest (release/delta.ts). */
  skip: string[];
  /** The tree's .slipway/ and .env files: in every delta, as they are in every archive. */
  always: string[];
}

/** The archive's tree as a manifest, saved in the deployer's cache; null when the tree cannot take a delta. */
export async function treeManifest(config: ResolvedConfig, archive: ReleaseArchive): Promise<TreeManifest | null> {
  if (!archive.tree) return null;
  const all = await manifestFiles(archive.tree);
  const skip = overlays(config);
  if (!deltaSafe(all, skip)) return null;
  const files = releaseManifest(all, skip);
  const text = manifestText(files);
  try {
    saveManifest(text);
  } catch {
    // A cache that cannot be written (a read-only home): this deploy is unaffected, the next one uploads in full.
  }
  const always = all.filter((f) => isUnder(f.path, ['.slipway', '.env'])).map((f) => f.path);
  return { tree: archive.tree, files, text, sha256: sha256Text(text), skip, always };
}

export interface DeltaArchive {
  base: string;
  baseSha256: string;
  file: string;
  bytes: number;
  sha256: string;
  /** The base's paths not to link, one a line (stdin after the tar). */
  skipText: string;
  plan: DeltaPlan;
}

/** The base's manifest from the deployer's cache, or null: this deployer never built that release. */
export function baseManifest(sha256: string): ManifestFile[] | null {
  const text = loadManifest(sha256);
  return text === null ? null : parseManifestText(text);
}

/** Packs the delta from a base (its manifest) to the new tree, beside the release archive. */
export async function buildDelta(
  archive: ReleaseArchive,
  next: TreeManifest,
  base: { id: string; sha256: string; files: ManifestFile[] },
): Promise<DeltaArchive> {
  const plan = planDelta(base.files, next.files);
  const work = path.dirname(archive.file);
  const list = path.join(work, `delta-${base.sha256}.list`);
  const file = path.join(work, `delta-${base.sha256}.tar.gz`);
  writeFileSync(list, [...plan.send, ...next.always].map((p) => `${p}\0`).join(''));
  await execFileP('tar', ['-czf', file, '-C', next.tree, '--no-recursion', '--null', '-T', list]);
  const skipText = plan.skip.map((p) => `${p}\n`).join('');
  return {
    base: base.id,
    baseSha256: base.sha256,
    file,
    bytes: statSync(file).size,
    sha256: await sha256Of(file),
    skipText,
    plan,
  };
}
