// What the cached builds share (the fabfile bundle of `npx slipway`, tasks/bin/bundle.ts, and a compiled
// deploy.config.ts under plain node, tasks/config/load.ts): a manifest of every file a build was made from
// (size, mtime, sha256), checked on each run without loading esbuild, and files written whole.
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** path → [size, mtimeMs, sha256] */
export type Inputs = Record<string, [number, number, string]>;

export const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** node_modules/.cache/slipway beside `file`: where its cached builds live. */
export const cacheDirFor = (file: string) => path.join(path.dirname(file), 'node_modules', '.cache', 'slipway');

/** The files that changed since they were recorded: same size and mtime is unchanged, else the hash tells. */
export function changedInputs(inputs: Inputs): string[] {
  return Object.keys(inputs).filter((file) => {
    const [size, mtimeMs, hash] = inputs[file]!;
    try {
      const stat = statSync(file);
      if (stat.size === size && stat.mtimeMs === mtimeMs) return false;
      return sha256(readFileSync(file)) !== hash;
    } catch {
      return true; // gone
    }
  });
}

/** Records these files (absolute paths) as they are now. */
export function recordInputs(files: Iterable<string>): Inputs {
  return Object.fromEntries(
    [...files].map((file) => {
      const { size, mtimeMs } = statSync(file);
      return [file, [size, mtimeMs, sha256(readFileSync(file))]];
    }),
  );
}

export function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Written aside, then renamed: a run at the same moment reads the old file or the new one, whole. */
export function writeWhole(file: string, text: string, mode = 0o644): void {
  const aside = `${file}.${process.pid}.tmp`;
  writeFileSync(aside, text, { mode });
  renameSync(aside, file);
}

/**
 * `import.meta.dirname` / `filename` / `url` in `text` (the source of `file`) replaced by `file`'s own: once
 * bundled into the cache they would otherwise mean the cached build. Undefined when the text has none.
 */
export function ownImportMeta(file: string, text: string): string | undefined {
  if (!text.includes('import.meta')) return undefined;
  const own: Record<string, string> = { dirname: path.dirname(file), filename: file, url: pathToFileURL(file).href };
  return text.replace(/\bimport\.meta\.(dirname|filename|url)\b/g, (_, key: string) => JSON.stringify(own[key]));
}
