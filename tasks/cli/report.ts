// The run's summary table and --json output.
import { type HostReport, type HostRun, liveRelease } from '../fleet/host-run.js';
import type { Log } from '../lib/log.js';

/** host → live release, time spent, status: the end-of-task view of a fleet. */
export function printTable(log: Log, hostRuns: HostRun[], taskOk: boolean, dryRun: boolean): void {
  // Compact output (a terminal): the hosts by live release, and a line of its own for each failed host.
  const rows = log.compact ? hostRuns.filter((h) => h.report.failedAt) : hostRuns;
  if (log.compact) {
    const on = new Map<string, number>();
    for (const h of hostRuns) on.set(liveRelease(h), (on.get(liveRelease(h)) ?? 0) + 1);
    for (const [id, n] of on) log.line(`  live ${id}: ${n} of ${hostRuns.length} hosts`);
  }
  for (const h of rows) {
    const live = liveRelease(h);
    const seconds = `${(h.report.seconds ?? 0).toFixed(2)}s`;
    // A host that did not fail itself in a failed task was left as it was (or put back).
    const done = dryRun ? 'dry-run, nothing changed' : 'ok';
    const status = h.report.failedAt ? `FAILED at ${h.report.failedAt}` : taskOk ? done : 'not changed';
    log.line(`  ${h.config.name.padEnd(12)} ${live.padEnd(28)} ${seconds.padStart(7)}  ${status}`);
  }
}

/** One task's part of --json. */
export interface TaskResult {
  task: string;
  args: string[];
  ok: boolean;
  seconds: number;
  hosts: Record<string, HostReport>;
  error?: string;
}

/**
 * A task's --json entry, holding its hosts' own report objects: the summary an interrupt writes before the
 * task ends shows them as they are then. The caller sets ok and seconds when the task ends.
 */
export function taskResult(call: { name: string; args: string[] }, hostRuns: HostRun[]): TaskResult {
  const hosts = Object.fromEntries(hostRuns.map((h) => [h.config.name, h.report]));
  return { task: call.name, args: call.args, ok: false, seconds: 0, hosts };
}
