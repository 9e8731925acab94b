// Benchmark (not a test): warm redeploy and rollback of the sample app to 1, 10, 50 and 100 real sshd hosts
// (each its own sshd, private /srv, clean shell environment: test/helpers/sshd.ts), beside the floor of plain
// `ssh host true` to the same hosts in parallel (curve25519-sha256, as slipway's ssh2 negotiates). Also the
// bytes the deployer sent (all hosts together, from each sshd's "Transferred: … received N bytes" line).
// Runs interleaved; prints medians (min–max).
//   npx tsx bench/fleet.ts [runs=5] [tsx|mjs] [sizes=1,10,50,100]   (mjs: `npm run build` first)
import { readFileSync, statSync } from 'node:fs';
import { makeProject, type Project } from '../test/helpers/project.js';
import { startSshHosts, type TestHost } from '../test/helpers/sshd.js';
import { mustTime, summary } from './measure.js';

const runs = Number(process.argv[2] ?? 5);
const sizes = (process.argv[4] ?? '1,10,50,100').split(',').map(Number);
const fleet = await startSshHosts(Math.max(...sizes));
const entryArgs = process.argv[3] === 'mjs' ? ['fabfile.mjs'] : ['node_modules/tsx/dist/cli.mjs', 'fabfile.ts'];
const projects = new Map<number, Project>();
for (const n of sizes) {
  const hosts = fleet.hosts.slice(0, n).map((h) => fleet.configHost(h, `/srv/bench${n}`));
  projects.set(n, makeProject({ format: 'json', config: { knownHosts: fleet.knownHosts }, hosts }));
}
const cli = (n: number, task: string) => [...entryArgs, '--config', projects.get(n)!.configFile, task];
const ssh = (h: TestHost) => [
  ...['-i', fleet.clientKey, '-o', `UserKnownHostsFile=${fleet.knownHosts}`, '-o', 'BatchMode=yes'],
  ...['-o', 'KexAlgorithms=curve25519-sha256', '-p', String(h.port), `${h.user}@${h.address}`, 'true'],
];

/** Bytes the client sent to the hosts since `offsets` (sshd logs them when a connection closes). */
function bytesSent(hosts: TestHost[], offsets: Map<TestHost, number>): number {
  let total = 0;
  for (const h of hosts) {
    const text = readFileSync(h.logFile).subarray(offsets.get(h)).toString('utf8');
    for (const m of text.matchAll(/Transferred: sent \d+, received (\d+) bytes/g)) total += Number(m[1]);
  }
  return total;
}
const offsetsOf = (hosts: TestHost[]) => new Map(hosts.map((h) => [h, statSync(h.logFile).size]));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

try {
  // First deploys build the environments; then each run is a warm redeploy of an unchanged ref
  // (a new release) and a rollback to the one before.
  for (const n of sizes) {
    await mustTime(`first deploy (${n})`, process.execPath, cli(n, 'deploy'));
    await mustTime(`second deploy (${n})`, process.execPath, cli(n, 'deploy'));
  }
  const times = new Map(
    sizes.map((n) => [n, { deploy: [] as number[], rollback: [] as number[], ssh: [] as number[] }]),
  );
  const bytes = new Map<number, { deploy: number; rollback: number }>();
  for (let i = 0; i < runs; i++) {
    for (const n of sizes) {
      const hosts = fleet.hosts.slice(0, n);
      const t = times.get(n)!;
      let offsets = offsetsOf(hosts);
      t.deploy.push(await mustTime(`deploy ${n}`, process.execPath, cli(n, 'deploy')));
      await sleep(200); // sshd logs the transfer once the connection has closed
      const deployBytes = bytesSent(hosts, offsets);
      offsets = offsetsOf(hosts);
      t.rollback.push(await mustTime(`rollback ${n}`, process.execPath, cli(n, 'rollback')));
      await sleep(200);
      bytes.set(n, { deploy: deployBytes, rollback: bytesSent(hosts, offsets) });
      const start = performance.now();
      await Promise.all(hosts.map((h) => mustTime('ssh true', 'ssh', ssh(h))));
      t.ssh.push(performance.now() - start);
    }
  }
  const base = times.get(sizes[0])!;
  const [D1, R1] = [summary(base.deploy), summary(base.rollback)];
  console.log(`runs: ${runs}, entry: ${entryArgs.at(-1)}`);
  console.log('| hosts | warm redeploy | rollback | ssh true (all in parallel) | bytes sent: deploy / rollback |');
  console.log('|---|---|---|---|---|');
  for (const n of sizes) {
    const t = times.get(n)!;
    const [D, R, S] = [summary(t.deploy), summary(t.rollback), summary(t.ssh)];
    const b = bytes.get(n)!;
    console.log(
      `| ${n} | ${D.text} (${(D.median / D1.median).toFixed(2)}×) | ${R.text} (${(R.median / R1.median).toFixed(2)}×) ` +
        `| ${S.text} | ${b.deploy} / ${b.rollback} |`,
    );
  }
  console.log('goals: 100-host warm redeploy ≤ 4× the 1-host time; 100-host rollback ≤ 3× the 1-host rollback');
} finally {
  for (const p of projects.values()) p.cleanup();
  await fleet.stop();
}
