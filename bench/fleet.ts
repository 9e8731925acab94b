// Benchmark (not a test): warm redeploy and rollback of the sample app to 1, 10, 50 and 100 real sshd hosts
// (each its own sshd, private /srv, clean shell environment: test/helpers/sshd.ts), beside the floor of plain
// `ssh host true` to the same hosts in parallel (curve25519-sha256, as slipway's ssh2 negotiates). Also the
// bytes the deployer sent (all hosts together), counted in one more deploy and rollback through a TCP relay in
// front of each host (the timed runs go direct), and for a one-file change in a 200-file tree with and without
// delta releases.
// Runs interleaved; prints medians (min–max).
//   npx tsx bench/fleet.ts [runs=5] [tsx|mjs] [sizes=1,10,50,100]   (mjs: `npm run build` first)
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeProject, type Project } from '../test/helpers/project.js';
import { type CuttingRelay, startCuttingRelay, startSshHosts, type TestHost } from '../test/helpers/sshd.js';
import { mustTime, summary, timeCommand } from './measure.js';

const runs = Number(process.argv[2] ?? 5);
const sizes = (process.argv[4] ?? '1,10,50,100').split(',').map(Number);
const fleet = await startSshHosts(Math.max(...sizes));
const entryArgs = process.argv[3] === 'mjs' ? ['fabfile.mjs'] : ['node_modules/tsx/dist/cli.mjs', 'fabfile.ts'];
const projects = new Map<number, Project>();
for (const n of sizes) {
  const hosts = fleet.hosts.slice(0, n).map((h) => fleet.configHost(h, `/srv/bench${n}`));
  projects.set(n, makeProject({ format: 'json', config: { knownHosts: fleet.knownHosts }, hosts }));
}
/** Runs the CLI; its wall time and the CPU time (user + system) it and its children used, from bash's `times`. */
async function timeWithCpu(label: string, args: string[]): Promise<{ ms: number; cpu: number }> {
  const script = '"$@"; code=$?; times >&2; exit $code';
  const result = await timeCommand('bash', ['-c', script, 'bash', process.execPath, ...args]);
  if (result.code !== 0) throw new Error(`${label} failed (exit ${result.code}):\n${result.stderr.slice(-2000)}`);
  const [user, system] = [
    ...result.stderr
      .trim()
      .split('\n')
      .at(-1)!
      .matchAll(/(\d+)m([\d.]+)s/g),
  ].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return { ms: result.ms, cpu: (user + system) * 1000 };
}

const cli = (n: number, task: string) => [...entryArgs, '--config', projects.get(n)!.configFile, task];
const ssh = (h: TestHost) => [
  ...['-i', fleet.clientKey, '-o', `UserKnownHostsFile=${fleet.knownHosts}`, '-o', 'BatchMode=yes'],
  ...['-o', 'KexAlgorithms=curve25519-sha256', '-p', String(h.port), `${h.user}@${h.address}`, 'true'],
];

// The same hosts through byte-counting relays (their own known_hosts, as the relays' ports differ).
const relays = new Map<TestHost, CuttingRelay>();
for (const h of fleet.hosts) relays.set(h, await startCuttingRelay(h, Number.POSITIVE_INFINITY));
const relayedKnownHosts = path.join(fleet.dir, 'known_hosts_relayed');
writeFileSync(
  relayedKnownHosts,
  fleet.hosts
    .map((h) => `[127.0.0.1]:${relays.get(h)!.port} ${readFileSync(`${h.hostKey}.pub`, 'utf8').trim()}\n`)
    .join(''),
);
const counted = new Map<number, Project>();
for (const n of sizes) {
  const hosts = fleet.hosts
    .slice(0, n)
    .map((h) => ({ ...fleet.configHost(h, `/srv/bench${n}`), host: '127.0.0.1', port: relays.get(h)!.port }));
  counted.set(n, makeProject({ format: 'json', config: { knownHosts: relayedKnownHosts }, hosts }));
}
const sent = (hosts: TestHost[]) => hosts.reduce((sum, h) => sum + relays.get(h)!.bytesSent(), 0);

try {
  // First deploys build the environments; then each run is a warm redeploy of an unchanged ref
  // (a new release) and a rollback to the one before.
  for (const n of sizes) {
    await mustTime(`first deploy (${n})`, process.execPath, cli(n, 'deploy'));
    await mustTime(`second deploy (${n})`, process.execPath, cli(n, 'deploy'));
  }
  const times = new Map(
    sizes.map((n) => [
      n,
      {
        deploy: [] as number[],
        rollback: [] as number[],
        ssh: [] as number[],
        cpu: [] as number[],
        rcpu: [] as number[],
      },
    ]),
  );
  const bytes = new Map<number, { deploy: number; rollback: number }>();
  for (let i = 0; i < runs; i++) {
    for (const n of sizes) {
      const hosts = fleet.hosts.slice(0, n);
      const t = times.get(n)!;
      const deploy = await timeWithCpu(`deploy ${n}`, cli(n, 'deploy'));
      const rollback = await timeWithCpu(`rollback ${n}`, cli(n, 'rollback'));
      t.deploy.push(deploy.ms);
      t.cpu.push(deploy.cpu);
      t.rollback.push(rollback.ms);
      t.rcpu.push(rollback.cpu);
      const start = performance.now();
      await Promise.all(hosts.map((h) => mustTime('ssh true', 'ssh', ssh(h))));
      t.ssh.push(performance.now() - start);
    }
  }
  for (const n of sizes) {
    const hosts = fleet.hosts.slice(0, n);
    const args = (task: string) => [...entryArgs, '--config', counted.get(n)!.configFile, task];
    const before = sent(hosts);
    await mustTime(`counted deploy ${n}`, process.execPath, args('deploy'));
    const between = sent(hosts);
    await mustTime(`counted rollback ${n}`, process.execPath, args('rollback'));
    bytes.set(n, { deploy: between - before, rollback: sent(hosts) - between });
  }
  // Delta releases: a tree of 200 files (800 KiB of random bytes), then one file changed, deployed with delta
  // (the default) and with delta: false, bytes sent counted through the relays.
  const tree = Object.fromEntries(
    Array.from({ length: 200 }, (_, i) => [`app/data/f${i}.bin`, randomBytes(4096).toString('base64')]),
  );
  const oneFileChange = new Map<number, { delta: number; full: number; archive: number }>();
  for (const n of sizes) {
    const hosts = fleet.hosts.slice(0, n);
    const project = counted.get(n)!;
    const args = [...entryArgs, '--config', project.configFile, 'deploy'];
    project.commit('data', tree);
    await mustTime(`counted data deploy ${n}`, process.execPath, args);
    const change = async (i: number) => {
      project.commit(`change ${i}`, { 'app/data/f0.bin': randomBytes(4096).toString('base64') });
      const before = sent(hosts);
      await mustTime(`counted one-file deploy ${n}`, process.execPath, args);
      return (sent(hosts) - before) / n;
    };
    const delta = await change(1);
    project.writeConfig({ delta: false });
    const full = await change(2);
    project.writeConfig();
    const archive = execFileSync('git', ['-C', project.dir, 'archive', '--format=tar.gz', 'HEAD', 'app'], {
      maxBuffer: 64 << 20,
    }).length;
    oneFileChange.set(n, { delta, full, archive });
  }
  const base = times.get(sizes[0])!;
  const [D1, R1] = [summary(base.deploy), summary(base.rollback)];
  console.log(`runs: ${runs}, entry: ${entryArgs.at(-1)}`);
  console.log(
    '| hosts | warm redeploy | rollback | ssh true (all in parallel) | deployer CPU: deploy / rollback | bytes sent: deploy / rollback |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const n of sizes) {
    const t = times.get(n)!;
    const [D, R, S] = [summary(t.deploy), summary(t.rollback), summary(t.ssh)];
    const b = bytes.get(n)!;
    console.log(
      `| ${n} | ${D.text} (${(D.median / D1.median).toFixed(2)}×) | ${R.text} (${(R.median / R1.median).toFixed(2)}×) ` +
        `| ${S.text} | ${(summary(t.cpu).median / 1000).toFixed(2)} s / ${(summary(t.rcpu).median / 1000).toFixed(2)} s | ${b.deploy} / ${b.rollback} (${Math.round(b.deploy / n)} / ${Math.round(b.rollback / n)} a host) |`,
    );
  }
  console.log('goals: 100-host warm redeploy ≤ 4× the 1-host time; 100-host rollback ≤ 3× the 1-host rollback');
  console.log('\none file changed in a 200-file tree: bytes the deployer sent a host');
  console.log('| hosts | delta | delta: false | the tree as .tar.gz |');
  console.log('|---|---|---|---|');
  for (const n of sizes) {
    const o = oneFileChange.get(n)!;
    const share = ((o.delta / o.archive) * 100).toFixed(1);
    console.log(`| ${n} | ${Math.round(o.delta)} (${share}%) | ${Math.round(o.full)} | ${o.archive} |`);
  }
} finally {
  for (const p of [...projects.values(), ...counted.values()]) p.cleanup();
  for (const r of relays.values()) await r.stop();
  await fleet.stop();
}
