// Rollback: `rollback` steps back one release, `rollback:current` returns to the newest,
// `rollback:<id>` goes to that one. It reuses the switch; it never deletes a release.
import type { TaskRun } from './core/fleet.js';
import { parseRollbackArg, RollbackRefused, selectRollbackTarget } from './core/releases.js';
import { badReleases } from './hosts.js';
import { switchTo } from './switch.js';

/** Picks the target on every host; refuses when any host has none, or when hosts would land on different releases. */
export function rollbackTargets(run: TaskRun): Map<string, string> {
  if (run.args.length > 1) throw new RollbackRefused(`rollback takes one argument (current or a release id), got ${run.args.length}`);
  const request = parseRollbackArg(run.args[0]);
  const targets = new Map<string, string>();
  const refusals: string[] = [];
  for (const h of run.hosts) {
    try {
      targets.set(h.host.name, selectRollbackTarget({ releases: h.state.releases, live: h.state.live, bad: badReleases(h.state) }, request, run.options.force));
    } catch (error) {
      if (!(error instanceof RollbackRefused)) throw error;
      refusals.push(`${h.host.name}: ${error.message}`);
    }
  }
  if (refusals.length) throw new RollbackRefused(`rollback refused, nothing changed:\n${refusals.join('\n')}`);
  const distinct = new Set(targets.values());
  if (distinct.size > 1 && !run.options.force) {
    const lines = [...targets].map(([host, id]) => `${host} → ${id}`);
    throw new RollbackRefused(`hosts disagree on the rollback target (nothing changed; --force to roll back anyway, or rollback:<id>):\n${lines.join('\n')}`);
  }
  return targets;
}

export async function rollback(run: TaskRun): Promise<void> {
  await run.locked('rollback', async () => {
    const targets = rollbackTargets(run);
    await run.each('switch', (h) => switchTo(run, targets.get(h.host.name)!, 'rollback', { last: true })(h));
  });
}
