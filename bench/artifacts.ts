// Benchmark (not a test): the artifact store against today's upload, on N real sshd hosts behind byte-counting
// relays. (1) Bytes the deployer sends: a warm `deploy` uploads the archive to every host; `deploy --artifact`
// sends each host only commands (the archive went to the store once). (2) `promote:staging` into production
// against a warm redeploy of the same production hosts. Interleaved runs; medians.
//   npx tsx bench/artifacts.ts [runs=5] [hosts=5] [blobKiB=1024]
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeProject, ROOT } from '../test/helpers/project.js';
import { startCountingRelays, startSshHosts } from '../test/helpers/sshd.js';
import { mustTime, summary } from './measure.js';

const runs = Number(process.argv[2] ?? 5);
const count = Number(process.argv[3] ?? 5);
const blobKiB = Number(process.argv[4] ?? 1024);
const fleet = await startSshHosts(count);
const relays = await startCountingRelays(fleet);
const storeDir = mkdtempSync(path.join(tmpdir(), 'slipway-bench-store-'));
chmodSync(storeDir, 0o755);
const store = { store: { type: 'dir', path: storeDir } };
const project = makeProject({
  config: {
    knownHosts: relays.knownHosts,
    environments: {
      staging: { hosts: relays.configHosts('/srv/staging') },
      production: { hosts: relays.configHosts('/srv/production') },
    },
    defaultEnvironment: 'staging',
  },
});
const cli = (...args: string[]) => [
  path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'),
  path.join(ROOT, 'fabfile.ts'),
  '--config',
  project.configFile,
  ...args,
];
const node = process.execPath;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
/** Bytes that reached every host's sshd while `work` ran, per host. */
async function counted(work: () => Promise<unknown>): Promise<number[]> {
  const before = fleet.hosts.map((_, i) => relays.bytes(i));
  await work();
  return fleet.hosts.map((_, i) => relays.bytes(i) - before[i]);
}
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

try {
  // An app with a blob nothing compresses, so an archive sent is an archive counted.
  project.commit({ 'blob.bin': randomBytes(blobKiB * 1024).toString('base64') });
  // First deploys build each host's environment; what follows is warm.
  project.writeConfig();
  await mustTime('first deploy', node, cli('deploy'));
  await mustTime('first deploy', node, cli('--env', 'production', 'deploy'));
  const upload = await counted(() => mustTime('warm deploy', node, cli('deploy')));
  // Again: slipway's code is on the hosts now (.slipway/lib-*.sh), each run sends only calls.
  const uploadAgain = await counted(() => mustTime('warm deploy', node, cli('deploy')));
  project.writeConfig({ artifacts: store });
  await mustTime('build', node, cli('build'));
  const latest = path.join(storeDir, 'hello/staging');
  const archives = readdirSync(latest).filter((f) => f.endsWith('.tar.gz'));
  const archiveBytes = statSync(path.join(latest, archives[archives.length - 1])).size;
  const fetch = await counted(() => mustTime('deploy --artifact', node, cli('deploy', '--artifact', 'latest')));
  await mustTime('build', node, cli('build'));
  const fetchAgain = await counted(() => mustTime('deploy --artifact', node, cli('deploy', '--artifact', 'latest')));
  console.log(`${count} hosts, archive ${kib(archiveBytes)}:`);
  console.log(`  warm deploy (upload):      ${kib(sum(upload))} sent in all, ${kib(Math.max(...upload))} per host`);
  console.log(
    `  deploy --artifact latest:  ${kib(sum(fetch))} sent in all, ${kib(Math.max(...fetch))} per host ` +
      `(+ ${kib(archiveBytes)} once, to the store)`,
  );
  console.log(`  the same, again (a new build; slipway's code on the hosts, issue 13):`);
  console.log(
    `    warm deploy (upload):    ${kib(sum(uploadAgain))} sent in all, ${kib(Math.max(...uploadAgain))} per host`,
  );
  console.log(
    `    deploy --artifact latest: ${kib(sum(fetchAgain))} sent in all, ${kib(Math.max(...fetchAgain))} per host`,
  );

  const warm: number[] = [];
  const promote: number[] = [];
  for (let i = 0; i < runs; i++) {
    // Today's warm redeploy of production: the archive built here and uploaded to every host.
    project.writeConfig();
    warm.push(await mustTime('warm redeploy', node, cli('--env', 'production', 'deploy')));
    // A new artifact on staging (untimed), then promoted into the same production hosts.
    project.writeConfig({ artifacts: store });
    await mustTime('staging deploy', node, cli('deploy'));
    promote.push(await mustTime('promote', node, cli('--env', 'production', 'promote:staging')));
  }
  console.log(`  warm redeploy of production: ${summary(warm).text}`);
  console.log(`  promote:staging:             ${summary(promote).text}`);
} finally {
  project.cleanup();
  rmSync(storeDir, { recursive: true, force: true });
  await relays.stop();
  await fleet.stop();
}
