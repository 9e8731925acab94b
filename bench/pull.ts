// Benchmark (not a test): `pull:production` of 32 MiB of shared files (incompressible) and a 4 MiB dump from one
// sshd host to 1 and to 3 sshd hosts, streamed through the deployer, beside the floor of doing the same by hand
// with OpenSSH (`ssh src tar -cz | ssh dst tar -xz`, then the dump the same way) to 1 host. Interleaved; medians.
//   npx tsx bench/pull.ts [runs=5]
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { quote } from '../tasks/lib/sh.js';
import { makeProject } from '../test/helpers/project.js';
import { DEPLOY_USER, startSshHosts, type TestHost } from '../test/helpers/sshd.js';
import { mustTime, summary } from './measure.js';

const runs = Number(process.argv[2] ?? 5);
const fleet = await startSshHosts(4);
const [source, ...targets] = fleet.hosts;
const uid = Number(execFileSync('id', ['-u', DEPLOY_USER], { encoding: 'utf8' }));
const gid = Number(execFileSync('id', ['-g', DEPLOY_USER], { encoding: 'utf8' }));
for (const dir of ['bench', 'bench/shared', 'bench/shared/uploads']) {
  mkdirSync(path.join(source.srvDir, dir), { recursive: true });
  chownSync(path.join(source.srvDir, dir), uid, gid);
}
for (let i = 0; i < 8; i++) {
  const file = path.join(source.srvDir, 'bench/shared/uploads', `f${i}.bin`);
  writeFileSync(file, randomBytes(4 * 1024 * 1024));
  chownSync(file, uid, gid);
}
const entry = (h: TestHost) => fleet.configHost(h, '/srv/bench');
const config = (to: TestHost[]) => ({
  knownHosts: fleet.knownHosts,
  data: { dirs: ['uploads'], dump: { command: 'cat uploads/f0.bin', file: 'dumps/db.bin' } },
  environments: { production: { hosts: [entry(source)] }, staging: { hosts: to.map(entry) } },
});
const one = makeProject({ format: 'json', config: config([targets[0]]) });
const three = makeProject({ format: 'json', config: config(targets) });
const cli = (file: string) => ['node_modules/tsx/dist/cli.mjs', 'fabfile.ts', '--config', file, '--env', 'staging'];
const ssh = (h: TestHost, command: string) =>
  [
    'ssh',
    '-i',
    fleet.clientKey,
    '-o',
    `UserKnownHostsFile=${fleet.knownHosts}`,
    '-o',
    'BatchMode=yes',
    '-p',
    String(h.port),
    `${h.user}@${h.address}`,
    command,
  ]
    .map(quote)
    .join(' ');
const byHand = [
  `${ssh(source, 'tar -cz -C /srv/bench/shared uploads')} | ${ssh(targets[0], 'mkdir -p /srv/hand && tar -xz -C /srv/hand')}`,
  `${ssh(source, 'cd /srv/bench/shared && cat uploads/f0.bin')} | ${ssh(targets[0], 'cat > /srv/hand/db.bin')}`,
].join(' && ');

try {
  const p1: number[] = [],
    p3: number[] = [],
    h1: number[] = [];
  for (let i = 0; i < runs; i++) {
    p1.push(await mustTime('pull to 1 host', process.execPath, [...cli(one.configFile), 'pull:production']));
    p3.push(await mustTime('pull to 3 hosts', process.execPath, [...cli(three.configFile), 'pull:production']));
    h1.push(await mustTime('by hand to 1 host', 'bash', ['-o', 'pipefail', '-c', byHand]));
  }
  const [P1, P3, H1] = [p1, p3, h1].map(summary);
  console.log(`pull 36 MiB, 1 target:       ${P1.text}`);
  console.log(`pull 36 MiB, 3 targets:      ${P3.text}`);
  console.log(`ssh tar | ssh tar, 1 target: ${H1.text}`);
} finally {
  one.cleanup();
  three.cleanup();
  await fleet.stop();
}
