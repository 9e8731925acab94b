// Step: the switch, going live on every host at once (`current` swapped in one atomic rename of a fresh relative
// symlink, every change logged), and the way back to the previous release when a host fails after others switched.
import type { HostRun, StepOutcome } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import { CommandFailed } from '../hosts/host.js';
import { script, sh, type Shell } from '../lib/sh.js';
import { revisionLine } from '../release/metadata.js';
import { checkFor, healthCheckScript, healthyIn } from '../scripts/health.js';
import { installConfigsScript, restartScript } from '../scripts/services.js';
import { switchScript } from '../scripts/switch.js';

/**
 * Switches every host of the run; if some host fails after others switched, those go back to the
 * release they had, so the fleet is never left mixed. The output says which host is on which release.
 */
export async function cutover(run: TaskRun, id: string, ref: string): Promise<void> {
  // One host, and no --rolling batch after it (a later batch failing would not put it back, but holding its
  // switch past them would keep it off the new release while they deploy): no other host can need putting
  // back if its switch fails, so the switch may wait to ride on its next command or its unlock (TaskRun.hold).
  // With several, each host's switch goes now, so that a failure on one finds the others still locked.
  // blue-green: traffic moved before the switch, and a switch that fails must move it back (the run's cleanup,
  // around this step); held, it would fail later inside another step's command: it goes now.
  const hold = run.canHold && run.hosts.length === 1 && run.lastBatch && run.config.cutover.strategy === 'restart';
  try {
    await run.each('switch', switchTo(run, id, 'deploy', { ref, hold }));
  } catch (error) {
    // Still inside the locked block: every host that switched goes back while the lock is held.
    const switched = run.hosts.filter((h) => h.report.live === id && typeof h.report.previous === 'string');
    const back = (h: HostRun) => switchTo(run, h.report.previous ?? '', 'rollback')(h);
    await run.each('switch back', back, switched).catch((e: Error) => run.log.error(e.message));
    printLive(run);
    throw error;
  }
}

function printLive(run: TaskRun): void {
  for (const h of run.hosts) run.log.line(`  ${h.host.name}: live ${h.state.live ?? '(none)'}`);
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
    h.report.live = id;
    h.state.live = id;
    // CommandFailed's message is "<what> failed on <host> (exit n):" and then the output's last lines.
    const why = error.message.slice(error.message.indexOf('\n') + 1);
    const lost =
      error.result.code === null ? ' (the command ended without an exit status: connection lost or killed)' : '';
    throw new Error(`went back to ${id} on ${h.host.name}, but it did not come back healthy${lost}:\n${why}`);
  }
}

/**
 * The switch step: makes `id` live on a host and records why. Queued with atEnd as a locked block's
 * last step (rollback), its command also gives back the host's lock. `hold` (a deploy's cutover on one
 * host): its command is held back (TaskRun.hold) and its line printed now, as the steps after it go on.
 */
export function switchTo(
  run: TaskRun,
  id: string,
  action: 'deploy' | 'rollback',
  { ref, hold = false }: { ref?: string; hold?: boolean } = {},
) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const from = h.state.live;
    const releases = h.state.releases;
    const logLine = revisionLine(action, id, { from: from ?? '', ...(ref ? { ref } : {}) });
    // A deploy restarts in its own step after the switch; a rollback does it all in one round trip (blue-green:
    // its start-slot and move-traffic steps did, before the switch).
    const returns = action === 'rollback' && run.config.cutover.strategy === 'restart';
    const command = returns ? returnToScript(run, h, id, logLine) : switchScript(h.paths.root, id, logLine);
    const live = () => {
      h.report.previous = from;
      h.report.live = id;
      h.state.live = id;
      h.state.releases = [...new Set([...releases, id])].sort();
    };
    if (hold && action === 'deploy') {
      // Held back: the steps after it see the host as the switch leaves it (purge plans with it live). If it
      // fails once sent, the run's view of the host goes back to what it was and the switch is reported
      // failed; its error fails the step that sent it (the run's end prints where each host is).
      run.hold(h, 'switch', command, () => {
        delete h.report.previous;
        delete h.report.live;
        h.state.live = from;
        h.state.releases = releases;
        h.report.failedAt ??= 'switch';
        run.log.step(h.host.name, 'switch', 0, 'failed');
      });
      live();
      return run.tell(`${from ?? '(none)'} → ${id}`, `switch ${from ?? '(none)'} → ${id}`);
    }
    const running = run.exec(h, 'switch', command);
    const output = await (returns ? wentBack(h, id, running) : running);
    live();
    const move = `${from ?? '(none)'} → ${id}`;
    const healthy = healthyIn(output);
    const checks = returns && run.config.healthcheck ? ' and check its health' : '';
    return run.tell(`${move}${healthy && `; ${healthy}`}`, `switch ${move}${checks}`);
  };
}
