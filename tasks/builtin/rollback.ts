// Task `rollback`: back one release, `rollback:current` to the newest, `rollback:<id>` to that one; never deletes.
import type { TaskRun } from '../fleet/task-run.js';
import { UsageError } from '../lib/errors.js';
import { parseRollbackArg, RollbackRefused, selectRollbackTarget } from '../release/rules.js';
import { badReleases } from '../release/state.js';
import type { HostRun } from '../fleet/host-run.js';
import { stopStartedSlot } from '../steps/cleanup.js';
import { drainSlot } from '../steps/drain-slot.js';
import { moveTraffic } from '../steps/move-traffic.js';
import { startSlot } from '../steps/start-slot.js';
import { switchTo } from '../steps/switch.js';

/** rollback, rollback:current or rollback:<id>: at most one argument. */
export function checkRollbackArgs(args: string[]): void {
  if (args.length > 1)
    throw new UsageError(`rollback takes one argument (current or a release id), got ${args.length}`);
}

/** Picks the target on every host; refuses when any host has none, or when hosts would land on different releases. */
export function rollbackTargets(run: TaskRun): Map<string, string> {
  const request = parseRollbackArg(run.args[0]);
  const targets = new Map<string, string>();
  const refusals: string[] = [];
  for (const h of run.hosts) {
    try {
      targets.set(
        h.host.name,
        selectRollbackTarget(
          { releases: h.state.releases, live: h.state.live, bad: badReleases(h.state) },
          request,
          run.options.force,
        ),
      );
    } catch (error) {
      if (!(error instanceof RollbackRefused)) throw error;
      refusals.push(`${h.host.name}: ${error.message}`);
    }
  }
  if (refusals.length) throw new RollbackRefused(`rollback refused, nothing changed:\n${refusals.join('\n')}`);
  const distinct = new Set(targets.values());
  if (distinct.size > 1 && !run.options.force) {
    const lines = [...targets].map(([host, id]) => `${host} → ${id}`);
    throw new RollbackRefused(
      'hosts disagree on the rollback target (nothing changed; --force to roll back anyway, or rollback:<id>):\n' +
        lines.join('\n'),
    );
  }
  return targets;
}

export async function rollback(run: TaskRun): Promise<void> {
  await run.locked('rollback', async () => {
    const targets = rollbackTargets(run);
    if (run.config.cutover.strategy === 'blue-green') return blueGreenRollback(run, targets);
    // The block's last step: its command gives back each host's lock in the same round trip.
    await run.atEnd('switch', async (h) => {
      const target = targets.get(h.host.name)!;
      // Already there (say, rollback:current on the newest): no switch, no restart, nothing logged.
      if (target === h.state.live) return { skipped: `already on ${target}` };
      return switchTo(run, target, 'rollback')(h);
    });
  });
}

/**
 * blue-green: the same cutover as a deploy, onto the target release: started in the idle slot and checked
 * there (every host), traffic moved, `current` switched, the old slot drained and stopped (that last step
 * carries the unlock). A target that fails its check is stopped; traffic never left the live slot.
 */
async function blueGreenRollback(run: TaskRun, targets: Map<string, string>): Promise<void> {
  const target = (h: HostRun) => targets.get(h.host.name)!;
  await run.undoable(
    async () => {
      await run.each('start-slot', startSlot(run, target, 'rollback'));
      await run.each('move-traffic', moveTraffic(run));
      await run.each('switch', async (h) => {
        if (!h.report.slot?.moved) return { skipped: `already on ${target(h)}` };
        return switchTo(run, target(h), 'rollback')(h);
      });
    },
    'cleanup',
    stopStartedSlot(run),
  );
  await run.atEnd('drain-slot', drainSlot(run));
}
