// The deployer's cache of release manifests, by the sha256 of their text: a delta needs the base release's
// manifest, which the deployer wrote when it built that release (a host only names it, by its sha256).
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { sha256Text } from './delta.js';

/** Manifests kept (the newest by modification time); a deploy refreshes the one it uses. */
const KEEP = 200;

/** $SLIPWAY_CACHE, else $XDG_CACHE_HOME/slipway, else ~/.cache/slipway. */
export function manifestCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const root = env.SLIPWAY_CACHE || path.join(env.XDG_CACHE_HOME || path.join(homedir(), '.cache'), 'slipway');
  return path.join(root, 'manifests');
}

/** The manifest whose text has this sha256, or null (never cached here, or its file does not match). */
export function loadManifest(sha256: string, dir = manifestCacheDir()): string | null {
  if (!/^[0-9a-f]{64}$/.test(sha256)) return null;
  const file = path.join(dir, sha256);
  if (!existsSync(file)) return null;
  const text = readFileSync(file, 'utf8');
  return sha256Text(text) === sha256 ? text : null;
}

/** Stores a manifest under its sha256 (written aside, then renamed) and trims the cache to KEEP files. */
export function saveManifest(text: string, dir = manifestCacheDir()): string {
  const sha = sha256Text(text);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, sha);
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, text);
  renameSync(temp, file);
  const kept = readdirSync(dir)
    .filter((f) => /^[0-9a-f]{64}$/.test(f))
    .map((f) => ({ f, at: statSync(path.join(dir, f)).mtimeMs }))
    .sort((a, b) => b.at - a.at);
  for (const { f } of kept.slice(KEEP)) rmSync(path.join(dir, f), { force: true });
  return sha;
}
