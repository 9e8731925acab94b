// Benchmark (not a test): the bytes the deployer sends each host (counted at a relay in front of a real sshd) and
// the exec requests, per operation: first deploy, warm redeploy, a new commit, rollback, deploy --artifact latest
// (dir store). With SLIPWAY_TRACE_BYTES=<dir>, slipway writes each command's size there (one JSON line each).
//   npx tsx bench/bytes.ts [hosts=1]
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeProject } from '../test/helpers/project.js';
import { startCountingRelays, startSshHosts } from '../test/helpers/sshd.js';

const count = Number(process.argv[2] ?? 1);
const trace = process.env.SLIPWAY_TRACE_BYTES;
const fleet = await startSshHosts(count);
const relays = await startCountingRelays(fleet);
const storeDir = mkdtempSync(path.join(tmpdir(), 'slipway-bench-store-'));
chmodSync(storeDir, 0o755);
const project = makeProject({
  config: {
    knownHosts: relays.knownHosts,
    environments: { staging: { hosts: relays.configHosts('/srv/staging') } },
    defaultEnvironment: 'staging',
  },
});
const kib = (bytes: number) => `${(bytes / 1024).toFixed(2)} KiB`;

async function measure(label: string, args: string[]): Promise<void> {
  const before = fleet.hosts.map((_, i) => relays.bytes(i));
  for (const h of fleet.hosts) fleet.resetCounts(h);
  const env = trace ? { SLIPWAY_TRACE_FILE: path.join(trace, `${label.replace(/\W+/g, '-')}.jsonl`) } : {};
  const result = await project.run(args, { env });
  if (result.code !== 0) throw new Error(`${label} failed:\n${result.stdout}\n${result.stderr}`);
  const sent = fleet.hosts.map((_, i) => relays.bytes(i) - before[i]);
  const execs = fleet.hosts.map((h) => fleet.counts(h).execRequests);
  console.log(`${label.padEnd(28)} ${kib(Math.max(...sent))} per host (max), ${Math.max(...execs)} exec requests`);
}

try {
  project.writeConfig();
  await measure('first deploy', ['deploy']);
  await measure('warm redeploy', ['deploy']);
  await measure('warm redeploy again', ['deploy']);
  project.commit({ 'note.txt': 'a change\n' });
  await measure('deploy of a new commit', ['deploy']);
  await measure('rollback', ['rollback']);
  project.writeConfig({ artifacts: { store: { type: 'dir', path: storeDir } } });
  const build = await project.run(['build']);
  if (build.code !== 0) throw new Error(`build failed:\n${build.stderr}`);
  await measure('deploy --artifact latest', ['deploy', '--artifact', 'latest']);
  project.commit({ 'note.txt': 'another change\n' });
  const again = await project.run(['build']);
  if (again.code !== 0) throw new Error(`build failed:\n${again.stderr}`);
  await measure('again, a new artifact', ['deploy', '--artifact', 'latest']);
} finally {
  project.cleanup();
  rmSync(storeDir, { recursive: true, force: true });
  await relays.stop();
  await fleet.stop();
}
