// Step: purge releases beyond keepReleases and environments no kept release uses.
import type { HostRun, StepOutcome } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import { count } from '../lib/log.js';
import { planPurge } from '../release/rules.js';
import { slotReleases } from '../release/state.js';
import { purgedIn, purgeScript } from '../scripts/purge.js';
import { programPidCommand } from '../scripts/services.js';

/** The purge step: applies keepReleases on a host (fabfile.ts queues it to the locked block's end). */
export function purgeReleases(run: TaskRun) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const all = planPurge(h.state, run.config.keepReleases);
    // blue-green: a release a slot runs (or may run again after a reboot) stays.
    const inSlots = slotReleases(h.state);
    const slotEnvs = inSlots.map((id) => h.state.meta[id]?.envKey);
    const plan = {
      releases: all.releases.filter((id) => !inSlots.includes(id)),
      envs: slotEnvs.includes(undefined) ? [] : all.envs.filter((key) => !slotEnvs.includes(key)),
    };
    if (!plan.releases.length && !plan.envs.length)
      return { skipped: `${count(h.state.releases.length, 'release')}, keeping ${run.config.keepReleases}` };
    // Queued with atEnd as the block's last step, this command also gives back the host's lock.
    const output = await run.exec(h, 'purge', purgeScript(h.paths.root, plan, programPidCommand(run.config.services)));
    // A dry run's output is empty: its summary comes from the plan, which is the script it printed.
    const removed = run.options.dryRun ? plan.releases : purgedIn(output);
    const kept = output.split('\n').filter((l) => l.startsWith('kept '));
    h.state.releases = h.state.releases.filter((id) => !removed.includes(id));
    h.report.purged = removed;
    const envs = plan.envs.length ? ` and ${count(plan.envs.length, 'environment')}` : '';
    const what = `${count(removed.length, 'release')}${envs}`;
    return [run.tell(`removed ${what}`, `remove ${what}`), ...kept].join('; ');
  };
}
