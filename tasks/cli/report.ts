// The run's summary table and --json output.
import { type HostRun, liveRelease } from '../fleet/host-run.js';
import { Log } from '../lib/log.js';

/** host → live release, time spent, status: the end-of-task view of a fleet. */
export function printTable(log: Log, hostRuns: HostRun[], taskOk: boolean, dryRun: boolean): void {
  for (const h of hostRuns) {
    const live = liveRelease(h);
    const seconds = `${((h.result.seconds as number | undefined) ?? 0).toFixed(2)}s`;
    // A host that did not fail itself in a failed task was left as it was (or put back).
    const done = dryRun ? 'dry-run, nothing changed' : 'ok';
    const status = h.result.failedAt ? `FAILED at ${h.result.failedAt as string}` : taskOk ? done : 'not changed';
    log.line(`  ${h.config.name.padEnd(12)} ${live.padEnd(28)} ${seconds.padStart(7)}  ${status}`);
  }
}

export interface TaskResult {
  task: string;
  args: string[];
  ok: boolean;
  seconds: number;
  hosts: Record<string, Record<string, unknown>>;
  error?: string;
}
