// Rollback: `rollback` steps back one release, `rollback:current` returns to the newest,
// `rollback:<id>` goes to that one. It reuses the switch; it never deletes a release.
import type { HostRun, StepOutcome, TaskRun } from './core/fleet.js';
import { liveRelease } from './core/fleet.js';
import { mustRun } from './core/host.js';
import { secrets } from './core/redact.js';
import { layout } from './core/paths.js';
import type { Shell } from './core/sh.js';
import { script, sh } from './core/sh.js';
import type { Release } from './release.js';
import { releaseMeta } from './upload.js';
import { parseRollbackArg, RollbackRefused, selectRollbackTarget } from './core/releases.js';
import { badReleases } from './hosts.js';
import { healthyIn } from './services.js';
import { returnToScript, revisionLine, switchTo, wentBack } from './switch.js';

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
    await run.each('switch', async (h) => {
      const target = targets.get(h.host.name)!;
      // Already there (say, rollback:current on the newest): no switch, no restart, nothing logged.
      if (target === h.state.live) return { skipped: `already on ${target}` };
      return switchTo(run, target, 'rollback', { last: true })(h);
    });
  });
}

/**
 * Marks a release bad in its metadata: `rollback` skips it and purge removes it first. The reason is
 * redacted before it is cut short (a cut secret would no longer match), and the metadata comes on
 * stdin: a failure's output is no business of the command line, where `ps` on the host shows it.
 */
export function markBadScript(deployTo: string, release: Release, envKey: string | null, reason: string): { script: Shell; stdin: string } {
  const file = `${layout(deployTo).release(release.id)}/.slipway/release.json`;
  const meta = { ...releaseMeta(release, envKey), status: 'bad', reason: secrets.redact(reason).split('\n').slice(0, 3).join(' ').slice(0, 300) };
  const stdin = `${JSON.stringify(meta)}\n`;
  const bytes = Buffer.byteLength(stdin);
  const write = sh`head -c ${bytes} > ${`${file}.new`} && mv -f ${`${file}.new`} ${file}`;
  return { script: script(sh`if [ -d "$(dirname ${file})" ]; then ${write}; else head -c ${bytes} > /dev/null; fi`), stdin };
}

/** The reason a release is marked bad when the run was interrupted past its switch. */
const INTERRUPTED = 'interrupted';

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
    const previous = h.result.previous as string | null | undefined;
    try {
      if (!goBack || !previous) {
        return await mustRun(h.host, 'marking the release bad', mark.script, { stdin: mark.stdin }).then(() => 'marked bad, left live');
      }
      const logLine = revisionLine('rollback', previous, { from: release.id, reason: interrupted ? INTERRUPTED : 'auto' });
      const command = script(mark.script, returnToScript(run, h, previous, logLine));
      const output = await wentBack(h, previous, mustRun(h.host, 'rollback', command, { stdin: mark.stdin }));
      h.result.live = previous;
      h.state.live = previous;
      return `back on ${previous}${healthyIn(output) ? `; ${healthyIn(output)}` : ''}`;
    } catch (error) {
      // Switched back but unhealthy: wentBack recorded where it is. Otherwise cut off half way (or never
      // reached): this run cannot know which release the host is on.
      if (!previous || h.result.live !== previous) {
        delete h.result.live;
        h.result.unknown = (error as Error).message.split('\n')[0];
      }
      throw error;
    }
  };
  const step = interrupted ? 'rollback (interrupted)' : run.options.autoRollback ? 'auto-rollback' : 'mark bad';
  await run.each(step, back).catch((e: Error) => run.log.error(`${interrupted ? 'rollback' : 'automatic rollback'} failed:\n${e.message}`));
  const where = run.hosts.map((h) => (h.result.unknown ? `${h.host.name} state unknown` : `${h.host.name} on ${liveRelease(h)}`)).join(', ');
  if (interrupted) {
    const outcome = run.hosts.some((h) => h.result.previous) ? 'went back' : 'nothing to go back to, left live';
    const message = `interrupted after the switch, before ${release.id} was checked: ${outcome} (${where}); marked bad`;
    run.log.error(message);
    return message;
  }
  const what = goBack ? `rolled back automatically (${where})` : `left live because of --no-auto-rollback (${where})`;
  return `release ${release.id} failed after the switch and was ${what}; marked bad. Why:\n${reason}`;
}

/**
 * Runs what follows a switch (hooks, restart, health check). If it fails or the run is interrupted,
 * the release is marked bad and the hosts of the batch go back to the release they had (see above).
 */
export async function rollBackOnFailure(run: TaskRun, release: Release, body: () => Promise<void>): Promise<void> {
  // The body fails when an interrupt kills its command, while the interrupt's cleanup starts: go back once.
  let returning: Promise<string> | undefined;
  const goBack = (reason: string) => (returning ??= run.finishing(() => returnFromRelease(run, release, reason)));
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
