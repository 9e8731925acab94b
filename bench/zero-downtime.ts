// Zero-downtime benchmark (not a test): per cutover strategy, the sample app behind real nginx + supervisord
// (test/helpers/services.ts) on the local target, the tests' load client (test/helpers/load-client.ts) at a
// constant rate through nginx, and deploys alternating two refs. Per strategy: failed requests (by kind and
// client kind), p50 / p99 / max latency while a deploy command runs beside steady state (no command running),
// and the time from the command's start to traffic on the new release (the first answer naming it).
//   npx tsx bench/zero-downtime.ts [deploys=6] [rate=50] [scenario label…]
// A strategy is a row of SCENARIOS: its label and the config keys it adds to the stack's deploy config.
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type LatencyStats, latencyStats, startLoad } from '../test/helpers/load-client.js';
import { makeProject, type Project, releaseIdOf } from '../test/helpers/project.js';
import { nginxSettled, type ServiceStack, startServiceStack } from '../test/helpers/services.js';
import { twoFreePorts } from '../test/helpers/sshd.js';
import { median } from './measure.js';

export interface Scenario {
  label: string;
  /** Config keys over the stack's deployConfig(), e.g. `{ cutover: { strategy: 'blue-green', listen: 'socket' } }`. */
  config: (stack: ServiceStack) => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** Anything else the scenario needs in the project before its first deploy (templates, files). */
  prepare?: (project: Project, stack: ServiceStack) => void;
}

// restart is today's behaviour and default, so it adds no key. A blue-green row per listen mode is one more entry,
// e.g. { label: 'blue-green (socket)', config: () => ({ cutover: { strategy: 'blue-green', listen: 'socket' } }) }.
export const SCENARIOS: Scenario[] = [
  { label: 'restart', config: () => ({}) },
  {
    label: 'blue-green (socket)',
    config: () => ({ cutover: { strategy: 'blue-green' } }),
    // nginx's workers (nobody) reach <deployTo>/run/live.sock: every folder above it must let them through.
    prepare: (project) => chmodSync(project.dir, 0o711),
  },
  {
    // The slots on two free ports; each move rewrites run/upstream.conf and reloads nginx (confirmed by the site).
    label: 'blue-green (port)',
    config: async () => ({ cutover: { strategy: 'blue-green', listen: 'port', ports: await twoFreePorts() } }),
  },
];

const deploys = Number(process.argv[2] ?? 6);
const rate = Number(process.argv[3] ?? 50);
const only = process.argv.slice(4);
const STEADY_MS = 3000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (s: LatencyStats) => `${s.p50.toFixed(1)} / ${s.p99.toFixed(1)} / ${s.max.toFixed(0)} ms`;

interface Row {
  label: string;
  sent: number;
  failed: number;
  kinds: string;
  steady: LatencyStats;
  during: LatencyStats;
  toTraffic: number[];
  command: number[];
}

async function measure(scenario: Scenario): Promise<Row> {
  const stack = await startServiceStack();
  const project = makeProject({
    format: 'json',
    config: { ...stack.deployConfig(), ...(await scenario.config(stack)) },
  });
  const load = { handle: undefined as ReturnType<typeof startLoad> | undefined };
  try {
    scenario.prepare?.(project, stack);
    const refA = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: project.dir, encoding: 'utf8' }).trim();
    const original = readFileSync(path.join(project.dir, 'app/server.js'), 'utf8');
    const refB = project.commit({ 'server.js': `${original}// b\n` }, 'b');
    const first = await project.run(['deploy', '--ref', refA]);
    if (first.code !== 0) throw new Error(`${scenario.label}: first deploy failed:\n${first.stderr}${first.stdout}`);
    // Its nginx reload (the site is new) may leave the old worker taking a connection for a moment, answering
    // with the old config (no site): the load starts once only the new worker is left.
    await nginxSettled(stack);

    const handle = startLoad({ url: `http://127.0.0.1:${stack.nginxPort}/`, host: 'localhost', rate });
    load.handle = handle;
    await handle.waitFor(releaseIdOf(first.stdout), 10_000);
    await sleep(STEADY_MS);
    const windows: [number, number][] = [];
    const toTraffic: number[] = [];
    const command: number[] = [];
    for (let i = 0; i < deploys; i++) {
      const start = Date.now();
      const result = await project.run(['deploy', '--ref', i % 2 === 0 ? refB : refA]);
      const end = Date.now();
      if (result.code !== 0) throw new Error(`${scenario.label}: deploy failed:\n${result.stderr}${result.stdout}`);
      windows.push([start, end]);
      command.push(end - start);
      const answer = await handle.waitFor(releaseIdOf(result.stdout), 10_000);
      toTraffic.push(answer.at - start);
      await sleep(STEADY_MS);
    }
    const summary = await handle.stop();
    load.handle = undefined;

    const inWindow = (at: number) => windows.some(([start, end]) => at >= start && at <= end);
    const during = summary.answers.filter((a) => inWindow(a.at)).map((a) => a.latencyMs);
    // Steady: no command running, and 1 s away from one (the old process may still be going).
    const calm = (at: number) => !windows.some(([start, end]) => at >= start - 1000 && at <= end + 1000);
    const steady = summary.answers.filter((a) => calm(a.at)).map((a) => a.latencyMs);
    const kinds = new Map<string, number>();
    for (const f of summary.failed) {
      const key = `${f.kind} (${f.keepAlive ? 'keep-alive' : 'new conn'})`;
      kinds.set(key, (kinds.get(key) ?? 0) + 1);
    }
    return {
      label: scenario.label,
      sent: summary.sent,
      failed: summary.failed.length,
      kinds: [...kinds].map(([k, n]) => `${n} ${k}`).join(', '),
      steady: latencyStats(steady),
      during: latencyStats(during),
      toTraffic,
      command,
    };
  } finally {
    await load.handle?.stop();
    await stack.stop();
    project.cleanup();
  }
}

const rows: Row[] = [];
for (const scenario of SCENARIOS.filter((s) => only.length === 0 || only.includes(s.label))) {
  console.error(`${scenario.label}: ${deploys} deploys at ${rate} req/s…`);
  rows.push(await measure(scenario));
}

const s2 = (ms: number) => (ms / 1000).toFixed(2);
const seconds = (values: number[]) => `${s2(median(values))} s (${s2(Math.min(...values))}–${s2(Math.max(...values))})`;
const lines = [
  '# Zero-downtime cutover',
  '',
  `${new Date().toISOString().slice(0, 10)} · ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'} · ` +
    `Node ${process.version}`,
  '',
  `\`npx tsx bench/zero-downtime.ts ${deploys} ${rate}\`: the sample app behind real nginx + supervisord on the ` +
    `local target, ${rate} req/s through nginx (half keep-alive, half a new connection each), ${deploys} deploys ` +
    `alternating two refs, ${STEADY_MS / 1000} s of steady state before and after each. Latency p50 / p99 / max of ` +
    'the answered requests sent while a deploy command ran, and in steady state (no command within 1 s); ' +
    'time to traffic: from the command start to the first answer naming the new release, median (min–max).',
  '',
  '| strategy | requests | failed | failures | latency steady | latency during deploy | time to traffic ' +
    '| deploy command |',
  '|---|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.label} | ${r.sent} | ${r.failed} | ${r.kinds || '–'} | ${fmt(r.steady)} | ${fmt(r.during)} | ` +
      `${seconds(r.toTraffic)} | ${seconds(r.command)} |`,
  ),
  '',
];
console.log(lines.join('\n'));
if (only.length === 0) writeFileSync(path.join(import.meta.dirname, 'ZERO-DOWNTIME.md'), lines.join('\n'));
