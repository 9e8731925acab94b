// Benchmark (not a test): a one-file change redeployed to N real sshd hosts with delta (the default) and without
// (delta: false), interleaved: wall time, and bytes the deployer sent each host (counted by a relay in front of each
// sshd: login, commands and stdin). Then what verifying a release costs a host: hashing every file into its
// manifest (what a delta and a full upload both do) beside listing the inodes only.
//   npx tsx bench/delta.ts [hosts=10] [runs=5] [files=1000]
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import path from 'node:path';
import { overlays } from '../tasks/release/delta.js';
import { treeManifestScript } from '../tasks/scripts/delta.js';
import { makeProject } from '../test/helpers/project.js';
import { startCountingRelays, startSshHosts } from '../test/helpers/sshd.js';
import { median, mustTime, summary, timeCommand } from './measure.js';

const [hosts, runs, files] = [10, 5, 1000].map((d, i) => Number(process.argv[2 + i] ?? d));
const fleet = await startSshHosts(hosts);
const relays = await startCountingRelays(fleet);
const text = () => `${randomBytes(4500).toString('base64')}\n`;
const project = makeProject({
  format: 'json',
  config: {
    knownHosts: relays.knownHosts,
    dependencies: { type: 'none' },
    environments: {
      delta: { hosts: relays.configHosts('/srv/delta') },
      full: { hosts: relays.configHosts('/srv/full'), delta: false },
    },
    defaultEnvironment: 'delta',
  },
});
const cli = (env: string) => [
  'node_modules/tsx/dist/cli.mjs',
  'fabfile.ts',
  '--config',
  project.configFile,
  '--env',
  env,
];
const sent = () => fleet.hosts.map((_, i) => relays.bytes(i));

try {
  const tree: Record<string, string> = {};
  for (let i = 0; i < files; i++) tree[`app/data/f${i}.txt`] = text();
  project.commit('data', tree);
  const first = await timeCommand(process.execPath, [...cli('delta'), 'deploy']);
  if (first.code !== 0) throw new Error(first.stderr + first.stdout);
  const archiveKiB = Number(/\(([\d.]+) KiB archive\)/.exec(first.stdout)?.[1]);
  await mustTime('first full deploy', process.execPath, [...cli('full'), 'deploy']);
  const time = { delta: [] as number[], full: [] as number[] };
  const step = { delta: [] as number[], full: [] as number[] };
  const bytes = { delta: [] as number[], full: [] as number[] };
  for (let run = 0; run < runs; run++) {
    project.commit(`change ${run}`, { [`app/data/f${run}.txt`]: text() });
    for (const env of ['delta', 'full'] as const) {
      const before = sent();
      const result = await timeCommand(process.execPath, [...cli(env), 'deploy']);
      if (result.code !== 0) throw new Error(`deploy (${env}) failed:\n${result.stderr}${result.stdout}`);
      time[env].push(result.ms);
      bytes[env].push(median(sent().map((b, i) => b - before[i])));
      // The upload step's own time on each host, as its line prints it: the median host.
      const uploads = [...result.stdout.matchAll(/ upload\s+([\d.]+)s /g)].map((m) => Number(m[1]) * 1000);
      step[env].push(median(uploads));
    }
  }
  const archive = archiveKiB * 1024;
  console.log(`${hosts} hosts, ${files} files, archive ${archiveKiB.toFixed(1)} KiB; one-file change, ${runs} runs`);
  for (const env of ['delta', 'full'] as const) {
    const b = median(bytes[env]);
    const share = ((100 * b) / archive).toFixed(1);
    console.log(
      `  ${env.padEnd(5)}  deploy ${summary(time[env]).text}, upload step ${summary(step[env]).text}, ` +
        `${(b / 1024).toFixed(1)} KiB sent per host (${share}%)`,
    );
  }

  // What verification costs one host: the release's manifest (every file hashed), or its inodes only.
  const live = path.join(
    fleet.hosts[0].srvDir,
    'delta',
    readlinkSync(path.join(fleet.hosts[0].srvDir, 'delta/current')),
  );
  const out = path.join(fleet.dir, 'bench-manifest');
  const skip = overlays({ dependencies: { type: 'none' }, shared: { dirs: ['logs'], files: [] } });
  const hash: number[] = [];
  const inodes: number[] = [];
  for (let i = 0; i < 5; i++) {
    hash.push(await mustTime('manifest', 'bash', ['-c', `set -eu\n${treeManifestScript(live, out, skip).text}`]));
    inodes.push(await mustTime('inodes', 'bash', ['-c', 'find "$1" -printf "%i %P\\n" > /dev/null', '_', live]));
  }
  const du = execFileSync('du', ['-sh', live], { encoding: 'utf8' }).split('\t')[0];
  console.log(
    `  verify one release (${du}): hash every file ${summary(hash).text}; list inodes ${summary(inodes).text}`,
  );
} finally {
  project.cleanup();
  await relays.stop();
  await fleet.stop();
}
