// Benchmark (not a test): two builds of slipway side by side, to see what a change does. Both
// entries run interleaved on the same real sshd hosts: warm redeploy and rollback, 1 and 10 hosts.
//   git worktree add /tmp/base HEAD && ln -s "$PWD/node_modules" /tmp/base/ && (cd /tmp/base && npm run build)
//   npm run build && npx tsx bench/compare.ts 9 /tmp/base/fabfile.mjs fabfile.mjs
import path from 'node:path';
import { makeProject } from '../test/helpers/project.js';
import { startSshHosts, type TestHost } from '../test/helpers/sshd.js';
import { mustTime, summary } from './measure.js';

const runs = Number(process.argv[2] ?? 7);
const entries = process.argv.slice(3).map((e) => path.resolve(e));
if (entries.length !== 2) throw new Error('usage: npx tsx bench/compare.ts RUNS A.mjs B.mjs');
const fleet = await startSshHosts(10);
const entry = (h: TestHost, deployTo: string) => fleet.configHost(h, deployTo);
const one = makeProject({
  format: 'json',
  config: { knownHosts: fleet.knownHosts },
  hosts: [entry(fleet.hosts[0], '/srv/compare-1')],
});
const ten = makeProject({
  format: 'json',
  config: { knownHosts: fleet.knownHosts },
  hosts: fleet.hosts.map((h) => entry(h, '/srv/compare-10')),
});
const times = new Map<string, number[]>();
const run = async (label: string | null, file: string, config: string, task: string) => {
  const ms = await mustTime(`${file} ${task}`, process.execPath, [file, '--config', config, task]);
  if (label) times.set(label, [...(times.get(label) ?? []), ms]);
};
try {
  // Environments built first, outside the measured runs.
  for (const file of entries) for (const p of [one, ten]) await run(null, file, p.configFile, 'deploy');
  for (let i = 0; i < runs; i++) {
    for (const [k, file] of entries.entries()) {
      const back = i % 2 ? 'rollback:current' : 'rollback';
      await run(`${'AB'[k]} warm redeploy, 1 host`, file, one.configFile, 'deploy');
      await run(`${'AB'[k]} rollback, 1 host`, file, one.configFile, back);
      await run(`${'AB'[k]} warm redeploy, 10 hosts`, file, ten.configFile, 'deploy');
      await run(`${'AB'[k]} rollback, 10 hosts`, file, ten.configFile, back);
    }
  }
  console.log(`A = ${entries[0]}\nB = ${entries[1]}`);
  for (const [label, ms] of [...times].sort()) console.log(`${label.padEnd(26)} ${summary(ms).text}`);
} finally {
  one.cleanup();
  ten.cleanup();
  await fleet.stop();
}
