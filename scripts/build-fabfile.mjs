// `npm run build`: bundles fabfile.ts into fabfile.mjs (plain node, no tsx start-up), with a check at its
// top that records what it was built from: fabfile.ts and every module bundled into it (sha256). When
// one of them changed since the build, fabfile.mjs refuses to run (exit 2) instead of running old tasks.
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
// Packages with native parts or loaders stay external; zod (pure JS) is bundled: it starts faster. The AWS
// SDK stays external too: bundled it would be 1.7 MB of the 2.7 parsed on every start (~40 ms), and it is
// only imported (by name, from node_modules) when an s3 store is opened (tasks/store/s3.ts).
const external = [
  '@aws-sdk/*',
  'dotenv',
  'esbuild',
  'handlebars',
  'node-ssh',
  'p-limit',
  'proper-lockfile',
  'ssh-config',
  'ssh2',
  'tsx',
  'zx',
];

/**
 * Runs first in fabfile.mjs (its source is inlined there). `inputs`: path relative to the bundle's
 * folder `dir` (ending in /) → [size, mtimeMs, sha256]. A file with the size and mtime it had at the
 * build is unchanged; any other (a checkout, an edit undone) is hashed. Hashing all ~130 (1 MB, most
 * of it zod) would cost ~3-5 ms of every start; the stats cost well under 1 ms.
 */
function refuseIfChanged(inputs, crypto, fs, dir) {
  const changed = Object.keys(inputs).filter((file) => {
    const [size, mtimeMs, sha256] = inputs[file];
    try {
      const stat = fs.statSync(`${dir}${file}`);
      if (stat.size === size && stat.mtimeMs === mtimeMs) return false;
      return (
        crypto
          .createHash('sha256')
          .update(fs.readFileSync(`${dir}${file}`))
          .digest('hex') !== sha256
      );
    } catch {
      return true; // gone
    }
  });
  if (!changed.length) return;
  const names =
    changed.length > 3 ? `${changed.slice(0, 3).join(', ')} and ${changed.length - 3} more` : changed.join(', ');
  process.stderr.write(
    `error: ${names} changed since \`npm run build\`: rebuild (npm run build), or run npx tsx fabfile.ts\n`,
  );
  process.exit(2);
}

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: ['fabfile.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external,
  logLevel: 'warning',
  metafile: true,
  write: false,
  outfile: 'fabfile.mjs',
});
// Paths in the metafile are relative to root, where fabfile.mjs is written, with forward slashes.
const inputs = Object.fromEntries(
  Object.keys(result.metafile.inputs)
    .sort()
    .map((file) => {
      const where = path.join(root, file);
      const { size, mtimeMs } = statSync(where);
      return [file, [size, mtimeMs, createHash('sha256').update(readFileSync(where)).digest('hex')]];
    }),
);
const check = [
  '// The build check (scripts/build-fabfile.mjs): exit 2 if a file this was bundled from changed since.',
  `import * as slipwayBuildCrypto from 'node:crypto';`,
  `import * as slipwayBuildFs from 'node:fs';`,
  `import * as slipwayBuildUrl from 'node:url';`,
  `const slipwayBuildDir = slipwayBuildUrl.fileURLToPath(new URL('.', import.meta.url));`,
  `(${refuseIfChanged.toString()})(${JSON.stringify(inputs)}, slipwayBuildCrypto, slipwayBuildFs, slipwayBuildDir);`,
  '// (end of the build check)',
].join('\n');
writeFileSync(path.join(root, 'fabfile.mjs'), `${check}\n${result.outputFiles[0].text}`);
