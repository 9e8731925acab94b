// Soak (not in the default test run): cycles of deploy / rollback / rollback:current / purge against
// 3 real sshd hosts, a random fault injected in about a third of them, the invariants checked after
// every cycle, and recovery (the next deploy) timed after every fault.
//   npx tsx bench/soak.ts [cycles=200] [seed]
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { invariantViolations } from '../test/helpers/invariants.js';
import { makeProject, waitForOutput } from '../test/helpers/project.js';
import { startCuttingRelay, startSshHosts } from '../test/helpers/sshd.js';

const cycles = Number(process.argv[2] ?? 200);
let seed = Number(process.argv[3] ?? 42);
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};
const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];

const STEPS: Record<string, string[]> = {
  deploy: [
    'lock',
    'upload',
    'dependencies',
    'configs',
    'before-switch',
    'switch',
    'after-switch',
    'restart',
    'health',
    'purge',
  ],
  rollback: ['lock', 'switch'],
  purge: ['lock', 'purge'],
};
const PREPARE = ['upload', 'dependencies', 'configs', 'before-switch', 'switch'];

const fleet = await startSshHosts(3);
const [web1, web2, web3] = fleet.hosts;
const relay = await startCuttingRelay({ address: web1.address, port: web1.port }, Infinity);
const knownHosts = path.join(fleet.dir, 'known_hosts_soak');
writeFileSync(
  knownHosts,
  `${readFileSync(fleet.knownHosts, 'utf8')}[127.0.0.1]:${relay.port} ${readFileSync(`${web1.hostKey}.pub`, 'utf8')}`,
);
const entry = (name: string, host: string, port: number) => ({
  name,
  host,
  port,
  user: 'slipway',
  privateKey: fleet.clientKey,
  deployTo: '/srv/soak',
});
const project = makeProject({
  format: 'json',
  config: { keepReleases: 3, knownHosts },
  hosts: [
    entry('web1', '127.0.0.1', relay.port),
    entry('web2', web2.address, web2.port),
    entry('web3', web3.address, web3.port),
  ],
});
const roots = fleet.hosts.map((h) => path.join(h.srvDir, 'soak'));

const faults: Record<string, number> = {};
const outcomes: Record<string, number> = {};
const violations: string[] = [];
let slowestRecovery = { ms: 0, after: '' };

async function runWithFault(task: string, kind: string): Promise<number | null> {
  const args = [task];
  if (kind === 'kill') {
    const fault = `kill:${pick(['before', 'after'])}:${pick(STEPS[task.split(':')[0]])}`;
    const child = project.start(args, { SLIPWAY_FAULT: fault });
    return new Promise((r) => child.on('close', (code) => r(code)));
  }
  if (kind === 'interrupt') {
    const step = pick(STEPS[task.split(':')[0]]);
    const child = project.start(args, { SLIPWAY_FAULT: `pause:before:${step}` });
    const done = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    // The task may fail or finish before reaching the step (e.g. rollback at the oldest release).
    await Promise.race([
      waitForOutput(child, /@@paused/, 30_000)
        .then(() => child.kill(pick(['SIGINT', 'SIGTERM'])))
        .catch(() => undefined),
      done,
    ]);
    return done;
  }
  if (kind === 'cut') {
    relay.setCut(500 + Math.floor(random() * 8_000));
    const result = await project.run(args);
    relay.setCut(Infinity);
    return result.code;
  }
  // host-down: web3's sshd dies during a deploy's prepare phase.
  const resume = path.join(project.dir, `resume-${Date.now()}`);
  const child = project.start(['deploy'], {
    SLIPWAY_FAULT: `pause:before:${pick(PREPARE)}`,
    SLIPWAY_FAULT_RESUME: resume,
  });
  const done = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  await waitForOutput(child, /@@paused/, 30_000);
  fleet.kill(web3);
  writeFileSync(resume, '');
  const code = await done;
  await fleet.revive(web3);
  return code;
}

try {
  if ((await project.run(['deploy'])).code !== 0) throw new Error('first deploy failed');
  const started = performance.now();
  for (let i = 0; i < cycles; i++) {
    const task = ['deploy', 'rollback', 'rollback:current', 'purge'][i % 4];
    const kind = random() < 1 / 3 ? pick(['kill', 'interrupt', 'cut', 'host-down']) : null;
    const code = kind ? await runWithFault(task, kind) : (await project.run([task])).code;
    const label = kind ? `${kind === 'host-down' ? 'deploy' : task} + ${kind}` : task;
    outcomes[`${label} → exit ${code}`] = (outcomes[`${label} → exit ${code}`] ?? 0) + 1;
    if (kind) faults[kind] = (faults[kind] ?? 0) + 1;
    for (const root of roots)
      for (const v of invariantViolations(root, { tmpClean: false }))
        violations.push(`cycle ${i} (${label}) ${root}: ${v}`);
    if (kind) {
      const start = performance.now();
      const recovery = await project.run(['deploy']);
      const ms = performance.now() - start;
      if (recovery.code !== 0)
        violations.push(`cycle ${i} (${label}): the next deploy failed: ${recovery.stderr.slice(0, 300)}`);
      for (const root of roots)
        for (const v of invariantViolations(root)) violations.push(`cycle ${i} after recovery ${root}: ${v}`);
      if (ms > slowestRecovery.ms) slowestRecovery = { ms, after: label };
    }
    if ((i + 1) % 20 === 0) console.error(`… ${i + 1} cycles, ${violations.length} violations`);
  }
  const minutes = (performance.now() - started) / 60_000;
  console.log(`cycles run: ${cycles} in ${minutes.toFixed(1)} min (seed ${process.argv[3] ?? 42})`);
  console.log(
    `faults injected: ${Object.values(faults).reduce((a, b) => a + b, 0)} — ${Object.entries(faults)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  console.log(`invariant violations: ${violations.length}`);
  for (const v of violations.slice(0, 20)) console.log(`  ${v}`);
  console.log(`slowest recovery: ${(slowestRecovery.ms / 1000).toFixed(2)} s (after ${slowestRecovery.after})`);
  console.log('outcomes:');
  for (const [k, v] of Object.entries(outcomes).sort()) console.log(`  ${k}: ${v}`);
} finally {
  await relay.stop();
  project.cleanup();
  await fleet.stop();
}
