// Benchmark (not a test): warm redeploy of the sample app to 1 and to 5 real sshd hosts, beside the
// floor of plain `ssh host true` to 1 host and to 5 in parallel. Runs interleaved; prints medians.
//   npx tsx bench/fleet.ts [runs=7] [tsx|mjs]   (mjs: the prebuilt fabfile.mjs, `npm run build` first)
import { makeProject } from '../test/helpers/project.js';
import { startSshHosts, type TestHost } from '../test/helpers/sshd.js';
import { mustTime, summary } from './measure.js';

const runs = Number(process.argv[2] ?? 7);
const fleet = await startSshHosts(5);
const entry = (h: TestHost) => fleet.configHost(h, '/srv/bench');
const one = makeProject({ format: 'json', config: { knownHosts: fleet.knownHosts }, hosts: [entry(fleet.hosts[0])] });
const five = makeProject({ format: 'json', config: { knownHosts: fleet.knownHosts }, hosts: fleet.hosts.map(entry) });
const entryArgs = process.argv[3] === 'mjs' ? ['fabfile.mjs'] : ['node_modules/tsx/dist/cli.mjs', 'fabfile.ts'];
const cli = (config: string) => [...entryArgs, '--config', config, 'deploy'];
const ssh = (h: TestHost) => [
  '-i',
  fleet.clientKey,
  '-o',
  `UserKnownHostsFile=${fleet.knownHosts}`,
  '-o',
  'BatchMode=yes',
  '-p',
  String(h.port),
  `${h.user}@${h.address}`,
  'true',
];

try {
  // First deploys build the environments; what follows is the warm redeploy of an unchanged ref.
  await mustTime('first deploy (1)', process.execPath, cli(one.configFile));
  await mustTime('first deploy (5)', process.execPath, cli(five.configFile));
  const t1: number[] = [],
    t5: number[] = [],
    s1: number[] = [],
    s5: number[] = [];
  for (let i = 0; i < runs; i++) {
    t1.push(await mustTime('deploy 1 host', process.execPath, cli(one.configFile)));
    t5.push(await mustTime('deploy 5 hosts', process.execPath, cli(five.configFile)));
    s1.push(await mustTime('ssh true', 'ssh', ssh(fleet.hosts[0])));
    const start = performance.now();
    await Promise.all(fleet.hosts.map((h) => mustTime('ssh true', 'ssh', ssh(h))));
    s5.push(performance.now() - start);
  }
  fleet.resetCounts(fleet.hosts[0]);
  await mustTime('counted deploy', process.execPath, cli(one.configFile));
  const counts = fleet.counts(fleet.hosts[0]);
  const [T1, T5, S1, S5] = [t1, t5, s1, s5].map(summary);
  console.log(
    `warm redeploy, 1 host:   ${T1.text}   (${counts.connections} connection, ${counts.execRequests} exec requests)`,
  );
  console.log(`warm redeploy, 5 hosts:  ${T5.text}`);
  console.log(`ssh host true, 1 host:   ${S1.text}`);
  console.log(`ssh host true, 5 hosts:  ${S5.text}`);
  const added = T5.median - T1.median;
  const floor = S5.median - S1.median;
  console.log(
    `5 hosts add ${(added / 1000).toFixed(2)} s over 1; ` +
      `SSH alone adds ${(floor / 1000).toFixed(2)} s: ratio ${(added / floor).toFixed(2)} (goal ≤ 1.5)`,
  );
} finally {
  one.cleanup();
  five.cleanup();
  await fleet.stop();
}
