// Delta releases, the pure part: a release tree's manifest as canonical text (what the host computes the same way,
// scripts/delta.ts), which paths slipway overlays in a release (never in a manifest), and the plan of a delta from
// a base release's manifest to the new one: which files travel, which of the base's files are not linked.
import { createHash } from 'node:crypto';
import type { ResolvedConfig } from '../config/types.js';
import { sharedItems } from '../lib/paths.js';
import type { ManifestFile } from './manifest.js';
import type { HostState } from './state.js';

/**
 * Paths a staged release gets from slipway, not from the archive as it is: .slipway/ (the env file, rendered
 * configs, metadata), the .env link, the dependency environment's link, every shared item's link. A manifest
 * leaves them out (the host's copy of a base release holds slipway's versions of them); .slipway/ and .env travel
 * in every delta whatever changed (see alwaysSent).
 */
export function overlays(config: Pick<ResolvedConfig, 'dependencies' | 'shared'>): string[] {
  const env = { node: ['node_modules'], python: ['.venv'], none: [] }[config.dependencies.type];
  return ['.slipway', '.env', ...env, ...sharedItems(config.shared).linked];
}

export const isUnder = (file: string, roots: readonly string[]) =>
  roots.some((r) => file === r || file.startsWith(`${r}/`));

/** The mode a host's tar gives a file extracted under umask 022 (the stage script's). */
export const hostMode = (mode: string) => (Number.parseInt(mode, 8) & ~0o022).toString(8);

/**
 * A manifest as text, one line per file sorted by the path's bytes (LC_ALL=C sort): `path TAB mode TAB sha256`,
 * or `path TAB link TAB target` for a symlink. The host prints exactly this for the tree it assembled.
 */
export function manifestText(files: readonly ManifestFile[]): string {
  const sorted = [...files].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  return sorted.map((f) => `${f.path}\t${f.mode === 'link' ? `link\t${f.link}` : `${f.mode}\t${f.sha256}`}\n`).join('');
}

export const sha256Text = (text: string) => createHash('sha256').update(text).digest('hex');

/** The inverse of manifestText (a manifest read back from the deployer's cache). */
export function parseManifestText(text: string): ManifestFile[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [file, mode, value] = line.split('\t');
      return mode === 'link' ? { path: file, mode, link: value } : { path: file, mode, sha256: value };
    });
}

/**
 * A path the host's shell tools list unambiguously (no control characters, no backslash: sha256sum escapes those).
 * A tree with another kind of path is always uploaded whole.
 */
export const plainPath = (value: string) =>
  ![...value].some((c) => c.charCodeAt(0) < 0x20 || c === '\u007f' || c === '\\');

/** The tree's files for its manifest: outside the overlays, each with the mode the host will give it. */
export function releaseManifest(tree: readonly ManifestFile[], skip: readonly string[]): ManifestFile[] {
  return tree
    .filter((f) => !isUnder(f.path, skip))
    .map((f) => (f.mode === 'link' ? f : { ...f, mode: hostMode(f.mode) }));
}

/** Whether every path (and link target) in the tree is one the host lists unambiguously. */
export const deltaSafe = (files: readonly ManifestFile[], skip: readonly string[]) =>
  files.every((f) => plainPath(f.path) && (f.link === undefined || plainPath(f.link))) && skip.every(plainPath);

export interface DeltaPlan {
  /** Paths of the new tree that travel in the delta's tar (changed, added, or their mode changed). */
  send: string[];
  /** Paths of the base's manifest not hard-linked into the new release (removed, or changed). */
  skip: string[];
  changed: number;
  added: number;
  removed: number;
}

const same = (a: ManifestFile, b: ManifestFile) => a.mode === b.mode && a.sha256 === b.sha256 && a.link === b.link;

/**
 * The delta from a base release to the new tree, both as manifests: every base file identical in the new tree
 * (same content, mode, link target) is hard-linked, the rest of the new tree travels. A file whose mode alone
 * changed travels too: a hard-linked file's mode is the base's as well, so it is never chmod-ed in place.
 */
export function planDelta(base: readonly ManifestFile[], next: readonly ManifestFile[]): DeltaPlan {
  const before = new Map(base.map((f) => [f.path, f]));
  const after = new Map(next.map((f) => [f.path, f]));
  const plan: DeltaPlan = { send: [], skip: [], changed: 0, added: 0, removed: 0 };
  for (const f of next) {
    const old = before.get(f.path);
    if (old && same(old, f)) continue;
    plan.send.push(f.path);
    if (old) plan.changed++;
    else plan.added++;
  }
  for (const f of base) {
    const now = after.get(f.path);
    if (now && same(f, now)) continue;
    plan.skip.push(f.path);
    if (!now) plan.removed++;
  }
  return plan;
}

/** A host's candidate bases for a delta, best first: the live release, then the newest not marked bad. */
export function deltaBases(state: HostState): Array<{ id: string; sha256: string }> {
  const manifests = state.manifests ?? {};
  const ids = [state.live, ...[...state.releases].reverse()].filter(
    (id, i, all): id is string => id !== null && all.indexOf(id) === i,
  );
  return ids
    .filter((id) => state.releases.includes(id) && manifests[id] && state.meta[id]?.status !== 'bad')
    .map((id) => ({ id, sha256: manifests[id] }));
}
