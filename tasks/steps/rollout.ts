// Step: going live wave by wave (--waves, rollout.waves), each wave gated by the steps given for it, with a
// failure budget across the whole rollout (rollout.maxFailures); past it, every switched host goes back.
import { failureLimit, splitIntoWaves } from '../config/rollout.js';
import { type HostRun, liveRelease } from '../fleet/host-run.js';
import type { FailureBudget, TaskRun } from '../fleet/task-run.js';
import { SlipwayError } from '../lib/errors.js';
import { count } from '../lib/log.js';
import type { Release } from '../release/archive.js';
import { goBackFrom, INTERRUPTED } from './auto-rollback.js';
import { discard } from './cleanup.js';

/** Some hosts failed within rollout.maxFailures: the rollout finished, and they went back. */
export class RolloutIncomplete extends SlipwayError {}

/**
 * Runs `goLive` (switch, restart, health check, bake…: whatever the fabfile gives) on each wave in turn, the
 * next wave only once the one before passed all of it. Without waves, one wave of every host. A wave's own
 * failure is undone by the steps in `goLive` (cutover's undo, rollBackOnFailure); then the hosts of earlier
 * waves go back to the release they had (the release marked bad there) and the hosts of later waves, which
 * never switched, drop the prepared release. Hosts that failed within the budget go back at the end of their
 * wave; the rollout then ends with an error naming them.
 */
export async function inWaves(run: TaskRun, release: Release, goLive: (wave: TaskRun) => Promise<void>): Promise<void> {
  const sizes = run.options.waves ?? run.config.rollout?.waves;
  const groups = sizes ? splitIntoWaves(run.hosts, sizes) : [run.hosts];
  const budget: FailureBudget = { limit: failureLimit(run.config.rollout?.maxFailures, run.hosts.length), failed: [] };
  let current = 0;
  const switched = () =>
    groups
      .slice(0, current)
      .flat()
      .filter((h) => h.report.live === release.id);
  const untouched = () => groups.slice(current + 1).flat();
  // Interrupted: the current wave's own steps undo it; the rest is undone here.
  const unregister = run.onAbort(() =>
    stopRollout(run, release, switched(), untouched(), INTERRUPTED).then(() => undefined),
  );
  try {
    for (const [i, hosts] of groups.entries()) {
      current = i;
      if (groups.length > 1) {
        const after = groups.slice(0, i + 1).flat().length;
        const names = hosts.length > 5 ? `${hosts[0].config.name} … ${hosts.at(-1)!.config.name}` : names5(hosts);
        run.log.line(
          `wave ${i + 1}/${groups.length}: ${count(hosts.length, 'host')} (${names}); ${after} of ${run.hosts.length} after it`,
        );
      }
      const failedBefore = budget.failed.length;
      try {
        await goLive(run.subRun([...hosts], budget, i < groups.length - 1));
      } finally {
        // Hosts that failed within the budget go back now, whatever happens next.
        await putBack(run, release, budget.failed.slice(failedBefore));
      }
    }
  } catch (error) {
    if (run.interrupted) throw error;
    const reason = `wave ${current + 1} of ${groups.length} failed (above)`;
    const said = await stopRollout(run, release, switched(), untouched(), reason);
    throw new Error(said ? `${(error as Error).message}\n${said}` : (error as Error).message);
  } finally {
    unregister();
  }
  if (groups.length > 1 || budget.failed.length) printWhere(run);
  if (budget.failed.length) {
    const live = run.hosts.filter((h) => h.report.live === release.id).length;
    const failed = budget.failed.map((f) => `${f.host.config.name} (${f.step})`).join(', ');
    throw new RolloutIncomplete(
      `release ${release.id} is live on ${live} of ${run.hosts.length} hosts; ${failed} failed and went back ` +
        `(within rollout.maxFailures: ${budget.failed.length} of ${budget.limit})`,
    );
  }
}

const names5 = (hosts: HostRun[]) => hosts.map((h) => h.config.name).join(', ');

/** Hosts that failed within the budget: back to their release if they switched, else the prepared release dropped. */
async function putBack(run: TaskRun, release: Release, failed: FailureBudget['failed']): Promise<void> {
  if (!failed.length) return;
  const live = failed.filter((f) => f.host.report.live === release.id);
  const notLive = failed.filter((f) => f.host.report.live !== release.id).map((f) => f.host);
  if (live.length) {
    const why = live.map((f) => f.error.message).join('\n');
    await goBackFrom(run.subRun(live.map((f) => f.host)), release, why);
  }
  if (notLive.length)
    await run
      .subRun(notLive)
      .each('cleanup', discard(run, release))
      .catch(() => undefined);
}

/** Stops the rollout: switched hosts of earlier waves go back, hosts of later waves drop the prepared release. */
async function stopRollout(
  run: TaskRun,
  release: Release,
  switched: HostRun[],
  untouched: HostRun[],
  reason: string,
): Promise<string> {
  let said = '';
  if (switched.length) said = await goBackFrom(run.subRun(switched), release, reason);
  const left = untouched.filter((h) => !h.hostIfConnected?.lockLost);
  if (left.length) {
    await run
      .subRun(left)
      .each('cleanup', discard(run, release))
      .catch((e: Error) => run.log.error(`cleanup failed too:\n${e.message}`));
    run.log.line(`  never switched: ${count(left.length, 'host')} (${names5(left)})`);
  }
  return said;
}

/** Which host is on which release, one line per release. */
function printWhere(run: TaskRun): void {
  const on = new Map<string, string[]>();
  for (const h of run.hosts) on.set(liveRelease(h), [...(on.get(liveRelease(h)) ?? []), h.config.name]);
  const live = run.options.dryRun ? 'would be live' : 'live';
  for (const [id, names] of on) run.log.line(`  ${live} ${id}: ${count(names.length, 'host')} (${names.join(', ')})`);
}
