// The project's fabfile.ts as one cached ES module, for `npx slipway <task>`: bundled with esbuild into
// node_modules/.cache/slipway/, with a manifest of every file it was bundled from (size, mtime, sha256).
// A run whose inputs are unchanged imports the bundle at once; any change (an edit to fabfile.ts or to
// a module it imports, slipway upgraded) bundles again first, so a run is never stale.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import {
  cacheDirFor,
  changedInputs,
  type Inputs,
  ownImportMeta,
  readJson,
  recordInputs,
  sha256,
  writeWhole,
} from '../lib/build-cache.js';

/** The fabfile.ts of the project around `cwd`: in it or the nearest folder above that has one. */
export function findFabfile(cwd: string): string | undefined {
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'fabfile.ts');
    if (existsSync(file)) return file;
    if (path.dirname(dir) === dir) return undefined;
  }
}

interface Manifest {
  bundle: string;
  inputs: Inputs;
}

/**
 * What is bundled: the project's own files, slipway and what slipway imports (zod: it starts faster)
 * except these packages (native parts, loaders, the AWS SDK's size), as scripts/build-fabfile.mjs does.
 * Every other package (slipway's externals, the project's own dependencies) is imported at run time by
 * the absolute path it resolves to from its importer: the bundle lives in the cache, where a bare name
 * may not resolve, and a dependency with native parts or its own files keeps working.
 */
const EXTERNAL =
  /^(dotenv|esbuild|handlebars|node-ssh|p-limit|proper-lockfile|ssh-config|ssh2|tsx|zx|@aws-sdk\/[^/]+)(\/.*)?$/;
const IN_SLIPWAY = `${path.sep}node_modules${path.sep}slipway${path.sep}`;
const bundled = (specifier: string, importer: string) =>
  !EXTERNAL.test(specifier) && (/^slipway(\/|$)/.test(specifier) || importer.includes(IN_SLIPWAY));

/** The cache folder and the manifest's path for this fabfile (one per fabfile path). */
export function cachePaths(fabfile: string): { dir: string; manifest: string } {
  const dir = cacheDirFor(fabfile);
  return { dir, manifest: path.join(dir, `fabfile-${sha256(fabfile).slice(0, 12)}.json`) };
}

/**
 * The path of an up-to-date bundle of `fabfile`: the cached one when none of its inputs changed, else a
 * new one. `onRebuild` hears why it bundles.
 */
export async function fabfileBundle(fabfile: string, onRebuild: (why: string) => void): Promise<string> {
  const { dir, manifest } = cachePaths(fabfile);
  const cached = readJson<Manifest>(manifest);
  if (cached) {
    const changed = changedInputs(cached.inputs);
    const bundle = path.join(dir, cached.bundle);
    if (!changed.length && existsSync(bundle)) return bundle;
    const names = changed.map((f) => path.relative(process.cwd(), f));
    const shown = names.length > 3 ? `${names.slice(0, 3).join(', ')} and ${names.length - 3} more` : names.join(', ');
    onRebuild(changed.length ? `${shown} changed` : 'the bundle is gone');
  } else {
    onRebuild('first run');
  }
  return build(fabfile, dir, manifest, cached);
}

async function build(fabfile: string, dir: string, manifest: string, old: Manifest | undefined): Promise<string> {
  const esbuild = await import('esbuild');
  const externals = new Set<string>();
  const result = await esbuild.build({
    entryPoints: [fabfile],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    metafile: true,
    logLevel: 'silent',
    outfile: path.join(dir, 'fabfile.mjs'),
    absWorkingDir: path.dirname(fabfile),
    plugins: [
      {
        name: 'slipway-cache',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, async (args) => {
            if (args.pluginData === 'slipway-cache' || bundled(args.path, args.importer)) return undefined;
            const found = await b.resolve(args.path, {
              kind: args.kind,
              resolveDir: args.resolveDir,
              importer: args.importer,
              pluginData: 'slipway-cache',
            });
            if (found.errors.length) return { errors: found.errors };
            // Recorded with the inputs: once a reinstall moves or changes it, the bundle is made again.
            if (path.isAbsolute(found.path)) externals.add(found.path);
            return { path: found.path, external: true };
          });
          // import.meta.dirname / filename / url in the project's own files and in slipway's mean those files,
          // not the bundle (setup finds slipway's server/slipway-services above its own module).
          b.onLoad({ filter: /\.[cm]?[jt]s$/ }, (args) => {
            const inNodeModules = args.path.includes(`${path.sep}node_modules${path.sep}`);
            if (inNodeModules && !args.path.includes(IN_SLIPWAY)) return undefined;
            const contents = ownImportMeta(args.path, readFileSync(args.path, 'utf8'));
            if (contents === undefined) return undefined;
            const ext = path.extname(args.path);
            return { contents, loader: ext.endsWith('ts') ? 'ts' : 'js' };
          });
        },
      },
    ],
  });
  const cwd = path.dirname(fabfile);
  const inputs = recordInputs([
    ...Object.keys(result.metafile.inputs).map((file) => path.resolve(cwd, file)),
    ...externals,
  ]);
  const text = result.outputFiles[0]!.text;
  const name = `fabfile-${sha256(text).slice(0, 16)}.mjs`;
  mkdirSync(dir, { recursive: true });
  // Each file appears whole: a run at the same moment reads the old or the new one.
  writeWhole(path.join(dir, name), text);
  writeWhole(manifest, JSON.stringify({ bundle: name, inputs } satisfies Manifest));
  if (old && old.bundle !== name) rmSync(path.join(dir, old.bundle), { force: true });
  return path.join(dir, name);
}
