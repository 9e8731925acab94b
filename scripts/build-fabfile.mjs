// `npm run build`: bundles fabfile.ts into fabfile.mjs (plain node, no tsx start-up), with a check at its
// top that records what it was built from: fabfile.ts and every module bundled into it, by sha256. When
// one of them changed since the build, fabfile.mjs refuses to run (exit 2) instead of running old tasks.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
// Packages with native parts or loaders stay external; zod (pure JS) is bundled: it starts faster.
const external = ['dotenv', 'esbuild', 'handlebars', 'node-ssh', 'p-limit', 'proper-lockfile', 'ssh-config', 'ssh2', 'tsx', 'zx'];

/**
 * Runs first in fabfile.mjs (its source is inlined there). `inputs`: path relative to the bundle's
 * folder `dir` (ending in /) → sha256. Hashing them all (~130 files, 1 MB, most of it zod) takes about 3 ms.
 */
function refuseIfChanged(inputs, crypto, fs, dir) {
  const changed = Object.keys(inputs).filter((file) => {
    try {
      const bytes = fs.readFileSync(`${dir}${file}`);
      return crypto.createHash('sha256').update(bytes).digest('hex') !== inputs[file];
    } catch {
      return true; // gone
    }
  });
  if (!changed.length) return;
  const names = changed.length > 3 ? `${changed.slice(0, 3).join(', ')} and ${changed.length - 3} more` : changed.join(', ');
  process.stderr.write(`error: ${names} changed since \`npm run build\`: rebuild (npm run build), or run npx tsx fabfile.ts\n`);
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
  Object.keys(result.metafile.inputs).sort().map((file) => [file, createHash('sha256').update(readFileSync(path.join(root, file))).digest('hex')]),
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
