// Step: the switch, going live on every host at once (`current` swapped in one atomic rename of a fresh relative
// symlink, every change logged), and the way back to the previous release when a host fails after others switched.
import type { HostRun, StepOutcome } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import { CommandFailed, mustRun } from '../hosts/host.js';
import { count } from '../lib/log.js';
import { script, sh, type Shell } from '../lib/sh.js';
import { revisionLine } from '../release/metadata.js';
import { planPurge } from '../release/rules.js';
import { checkFor, healthCheckScript, healthyIn } from '../scripts/health.js';
import { purgedIn, purgeScript } from '../scripts/purge.js';
import { installConfigsScript, restartScript } from '../scripts/services.js';
import { switchScript } from '../scripts/switch.js';

/**
 * Switches every host of the run; if some host fails after others switched, those go back to the
 * release they had, so the fleet is never left mixed. The output says which host is on which release.
 */
export async function cutover(run: TaskRun, id: string, ref: string): Promise<void> {
  // With nothing to run after the switch, purge and unlock ride in the switch's round trip.
  const finishing =
    !run.config.hooks.afterSwitch.length && !run.config.services && !run.config.healthcheck && !run.options.rolling;
  try {
    await run.each('switch', switchTo(run, id, 'deploy', { ref, last: finishing, purge: finishing }));
  } catch (error) {
    const switched = run.hosts.filter((h) => h.result.live === id && typeof h.result.previous === 'string');
    await run
      .each('switch back', (h) => switchTo(run, h.result.previous as string, 'rollback')(h), switched)
      .catch((e: Error) => run.log.error(e.message));
    for (const h of run.hosts) run.log.line(`  ${h.host.name}: live ${h.state.live ?? '(none)'}`);
    throw error;
  }
}

/**
 * Going back to a release that was live before: its own configs installed and validated, switch, restart,
 * and the health check a deploy runs, so that the rollback ends only once that release answers.
 * `@@switched` marks the point from which it is live, whatever fails after (see wentBack).
 */
export function returnToScript(run: TaskRun, h: HostRun, id: string, logLine: string): Shell {
  const services = run.config.services;
  const check = run.config.healthcheck;
  return script(
    services && installConfigsScript(services, h.paths.root, id),
    switchScript(h.paths.root, id, logLine),
    sh`echo @@switched`,
    services && restartScript(services, h.paths.root, 'shell'),
    check && sh`( ${healthCheckScript(checkFor(check, id), services)} )`,
  );
}

/**
 * Awaits a command holding returnToScript. Once it switched, `id` is live on the host even if the
 * restart or the health check then failed: the state says so, and so does the error.
 */
export async function wentBack(h: HostRun, id: string, running: Promise<string>): Promise<string> {
  try {
    return await running;
  } catch (error) {
    if (!(error instanceof CommandFailed) || !/^@@switched$/m.test(error.result.stdout)) throw error;
    h.result.live = id;
    h.state.live = id;
    // CommandFailed's message is "<what> failed on <host> (exit n):" and then the output's last lines.
    const why = error.message.slice(error.message.indexOf('\n') + 1);
    const lost =
      error.result.code === null ? ' (the command ended without an exit status: connection lost or killed)' : '';
    throw new Error(`went back to ${id} on ${h.host.name}, but it did not come back healthy${lost}:\n${why}`);
  }
}

/** The switch step: makes `id` live on a host and records why. As a task's `last` step it also gives back the lock. */
export function switchTo(
  run: TaskRun,
  id: string,
  action: 'deploy' | 'rollback',
  { ref, last = false, purge = false }: { ref?: string; last?: boolean; purge?: boolean } = {},
) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const from = h.state.live;
    const logLine = revisionLine(action, id, { from: from ?? '', ...(ref ? { ref } : {}) });
    // A deploy restarts in its own step after the switch; a rollback does it all in one round trip.
    const switched =
      action === 'rollback' ? returnToScript(run, h, id, logLine) : switchScript(h.paths.root, id, logLine);
    const after = { ...h.state, live: id, releases: [...new Set([...h.state.releases, id])].sort() };
    const plan = purge ? planPurge(after, run.config.keepReleases) : { releases: [], envs: [] };
    const command =
      plan.releases.length || plan.envs.length ? script(switched, purgeScript(h.paths.root, plan)) : switched;
    const running = last ? run.finalCommand(h, 'switch', command) : mustRun(h.host, 'switch', command);
    const output = await (action === 'rollback' ? wentBack(h, id, running) : running);
    // A dry run's output is empty: its summary comes from the plan, which is the script it printed.
    const removed = run.options.dryRun ? plan.releases : purgedIn(output);
    h.result.previous = from;
    h.result.live = id;
    h.state.live = id;
    h.state.releases = after.releases.filter((r) => !removed.includes(r));
    const move = `${from ?? '(none)'} → ${id}`;
    const purged = removed.length ? count(removed.length, 'release') : '';
    const healthy = healthyIn(output);
    const checks = action === 'rollback' && run.config.healthcheck ? ' and check its health' : '';
    return run.tell(
      `${move}${purged && `; purged ${purged}`}${healthy && `; ${healthy}`}`,
      `switch ${move}${purged && ` and purge ${purged}`}${checks}`,
    );
  };
}
