// Benchmark (not a test): where the time of `npx slipway <task>` goes, phase by phase, in an app with the
// packed slipway installed and the fabfile `npx slipway init` writes (as bench/peers.ts sets it up). Whole
// commands (wall and CPU time, medians): node of an empty file, npx of an empty local bin (npx's own start-up),
// the bin run directly and through npx. Then, in fresh node processes, each phase of a run whose bundle is
// cached: loading the bin's module, the manifest check (fabfileBundle on a hit), importing the bundle; and
// what a cache miss would add: loading esbuild, bundling the fabfile, compiling deploy.config.ts.
//   npx tsx bench/bin-phases.ts [runs=9]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mustTimeCpu, summary } from './measure.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const runs = Number(process.argv[2] ?? 9);
const sh = (cmd: string, cwd?: string) =>
  execFileSync('bash', ['-c', cmd], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });

/** Runs in a fresh node process in the app: each phase's wall time (ms), as JSON. */
const PHASES = `
const t = [performance.now()];
const lap = () => { t.push(performance.now()); return t.at(-1) - t.at(-2); };
const out = {};
const dist = process.cwd() + '/node_modules/slipway/dist/tasks';
const { fabfileBundle, findFabfile } = await import(dist + '/bin/bundle.js'); out['load the bin\\'s bundle.js'] = lap();
const fabfile = findFabfile(process.cwd()); out['find fabfile.ts'] = lap();
let rebuilt = false;
const bundle = await fabfileBundle(fabfile, () => { rebuilt = true; });
out['manifest check (cache hit)'] = lap();
if (rebuilt) throw new Error('the bundle was not cached');
if (process.argv[2] === 'miss') {
  const esbuild = await import('esbuild'); out['load esbuild (a miss only)'] = lap();
  await esbuild.build({ entryPoints: ['deploy.config.ts'], bundle: true, packages: 'external', write: false,
    format: 'esm', platform: 'node', logLevel: 'silent',
    plugins: [{ name: 's', setup(b) { b.onResolve({ filter: /^slipway$/ },
      () => ({ path: dist + '/index.js' })); } }] });
  out['compile deploy.config.ts (a miss only)'] = lap();
} else {
  process.argv = [process.argv[0], fabfile, '--list'];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = () => true;
  // runTasks may end the process itself: the figure is taken then.
  process.on('exit', () => {
    out['import and run the bundle (--list)'] ??= lap();
    write(JSON.stringify(out) + '\\n');
  });
  await import(bundle);
}
if (process.argv[2] === 'miss') console.log(JSON.stringify(out));
`;

const work = mkdtempSync(path.join(os.tmpdir(), 'slipway-bin-phases-'));
try {
  const app = path.join(work, 'app');
  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'bin-phases', private: true }));
  const tarball = sh(`npm pack --silent --pack-destination ${work}`, ROOT).trim().split('\n').pop()!;
  sh(`npm install --prefer-offline --no-audit --no-fund --loglevel=error --save-dev ${path.join(work, tarball)}`, app);
  sh('npx slipway init >/dev/null', app);
  sh('npx slipway releases >/dev/null 2>&1', app); // bundles fabfile.ts and compiles deploy.config.ts once
  writeFileSync(path.join(app, 'node_modules/.bin/empty-bin'), '#!/usr/bin/env node\n', { mode: 0o755 });
  writeFileSync(path.join(work, 'empty.mjs'), '');
  writeFileSync(path.join(app, 'phases.mjs'), PHASES);

  const commands: Array<[string, string, string[]]> = [
    ['node <empty file>', process.execPath, [path.join(work, 'empty.mjs')]],
    ['npx <empty local bin>', 'npx', ['empty-bin']],
    ['node node_modules/.bin/slipway --list', process.execPath, ['node_modules/.bin/slipway', '--list']],
    ['npx slipway --list', 'npx', ['slipway', '--list']],
    ['node node_modules/.bin/slipway releases', process.execPath, ['node_modules/.bin/slipway', 'releases']],
    ['npx slipway releases', 'npx', ['slipway', 'releases']],
  ];
  const wall = new Map<string, number[]>();
  const cpu = new Map<string, number[]>();
  const phases = new Map<string, number[]>();
  const push = (m: Map<string, number[]>, k: string, v: number) => m.set(k, [...(m.get(k) ?? []), v]);
  for (let i = 0; i < runs; i++) {
    for (const [name, command, args] of commands) {
      const r = await mustTimeCpu(name, command, args, { cwd: app });
      push(wall, name, r.ms);
      push(cpu, name, r.cpu);
    }
    for (const mode of ['hit', 'miss']) {
      const out = JSON.parse(sh(`node phases.mjs ${mode}`, app)) as Record<string, number>;
      for (const [k, v] of Object.entries(out)) push(phases, k, v);
    }
  }
  const ms = (x: number) => `${Math.round(x)} ms`;
  const lines = [
    `# npx slipway, phase by phase (${runs} runs, medians; load average ${os.loadavg()[0].toFixed(2)} at the end)`,
    '',
    '| command | wall | CPU (user + system) |',
    '|---|---|---|',
    ...[...wall].map(([k, v]) => `| \`${k}\` | ${ms(summary(v).median)} | ${ms(summary(cpu.get(k)!).median)} |`),
    '',
    '| phase (in one node process, bundle cached) | wall |',
    '|---|---|',
    ...[...phases].map(([k, v]) => `| ${k} | ${ms(summary(v).median)} |`),
  ];
  console.log(lines.join('\n'));
} finally {
  rmSync(work, { recursive: true, force: true });
}
