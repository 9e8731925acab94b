// Step: when a deploy fails after its switch, go back to the previous release and mark the new one bad.
import { type HostRun, liveRelease, type StepOutcome } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import { mustRun } from '../hosts/host.js';
import { script } from '../lib/sh.js';
import type { Release } from '../release/archive.js';
import { revisionLine } from '../release/metadata.js';
import { healthyIn } from '../scripts/health.js';
import { markBadScript } from '../scripts/release.js';
import { backToOldSlotScript } from './move-traffic.js';
import { returnToScript, wentBack } from './switch.js';

/** The reason a release is marked bad when the run was interrupted past its switch. */
export const INTERRUPTED = 'interrupted';

/**
 * Marks the release bad and puts every host of the batch back on the release it had (configs and
 * program), unless --no-auto-rollback after a failure. Interrupted, the release was never checked:
 * it goes back even then. A host that cannot be put back is said to be in an unknown state.
 */
async function returnFromRelease(run: TaskRun, release: Release, reason: string): Promise<string> {
  const interrupted = reason === INTERRUPTED;
  const goBack = run.options.autoRollback || interrupted;
  const back = async (h: HostRun): Promise<StepOutcome> => {
    const mark = markBadScript(h.paths.root, release, release.envKeys.get(h.host.name) ?? null, reason);
    const previous = h.report.previous;
    try {
      // Its switch was held back and failed once sent (TaskRun.hold): the host never left the release it had.
      if (h.state.live !== release.id) {
        return await mustRun(h.host, 'marking the release bad', mark.script, { stdin: mark.stdin }).then(
          () => `marked bad; it never went live here (its switch failed), ${liveRelease(h)} still live`,
        );
      }
      if (!goBack || !previous) {
        return await mustRun(h.host, 'marking the release bad', mark.script, { stdin: mark.stdin }).then(
          () => 'marked bad, left live',
        );
      }
      const logLine = revisionLine('rollback', previous, {
        from: release.id,
        reason: interrupted ? INTERRUPTED : 'auto',
      });
      const back = backToOldSlotScript(run, h, previous, logLine) ?? returnToScript(run, h, previous, logLine);
      const command = script(mark.script, back);
      const output = await wentBack(h, previous, mustRun(h.host, 'rollback', command, { stdin: mark.stdin }));
      h.report.live = previous;
      h.state.live = previous;
      return `back on ${previous}${healthyIn(output) ? `; ${healthyIn(output)}` : ''}`;
    } catch (error) {
      // Switched back but unhealthy: wentBack recorded where it is. Otherwise cut off half way (or never
      // reached): this run cannot know which release the host is on.
      if (!previous || h.report.live !== previous) {
        delete h.report.live;
        h.report.unknown = (error as Error).message.split('\n')[0];
      }
      throw error;
    }
  };
  const step = interrupted ? 'rollback (interrupted)' : run.options.autoRollback ? 'auto-rollback' : 'mark bad';
  await run
    .each(step, back)
    .catch((e: Error) => run.log.error(`${interrupted ? 'rollback' : 'automatic rollback'} failed:\n${e.message}`));
  const where = run.hosts
    .map((h) => (h.report.unknown ? `${h.host.name} state unknown` : `${h.host.name} on ${liveRelease(h)}`))
    .join(', ');
  if (interrupted) {
    const outcome = run.hosts.some((h) => h.report.previous) ? 'went back' : 'nothing to go back to, left live';
    const message = `interrupted after the switch, before ${release.id} was checked: ${outcome} (${where}); marked bad`;
    run.log.error(message);
    return message;
  }
  const what = goBack ? `rolled back automatically (${where})` : `left live because of --no-auto-rollback (${where})`;
  return `release ${release.id} failed after the switch and was ${what}; marked bad. Why:\n${reason}`;
}

/** Marks the release bad and puts the run's hosts back (see above), letting an interrupt wait for it: its message. */
export function goBackFrom(run: TaskRun, release: Release, reason: string): Promise<string> {
  return run.finishing(() => returnFromRelease(run, release, reason));
}

/**
 * Runs what follows a switch (hooks, restart, health check). If it fails or the run is interrupted,
 * the release is marked bad and the hosts of the batch go back to the release they had (see above).
 */
export async function rollBackOnFailure(run: TaskRun, release: Release, body: () => Promise<void>): Promise<void> {
  // The body fails when an interrupt kills its command, while the interrupt's cleanup starts: go back once.
  let returning: Promise<string> | undefined;
  const goBack = (reason: string) => (returning ??= goBackFrom(run, release, reason));
  const unregister = run.onAbort(() => goBack(INTERRUPTED).then(() => undefined));
  try {
    await body();
  } catch (error) {
    // A command killed by the interrupt failed because of it, not because of the release.
    throw new Error(await goBack(run.interrupted ? INTERRUPTED : (error as Error).message));
  } finally {
    unregister();
  }
}
