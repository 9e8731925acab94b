// Rollback: `rollback` steps back one release, `rollback:current` returns to the newest,
// `rollback:<id>` goes to that one. It reuses the switch; it never deletes a release.
import type { HostRun, StepOutcome, TaskRun } from './core/fleet.js';
import { mustRun } from './core/host.js';
import { secrets } from './core/redact.js';
import { layout } from './core/paths.js';
import type { Shell } from './core/sh.js';
import { script, sh } from './core/sh.js';
import type { Release } from './release.js';
import { releaseMeta } from './upload.js';
import { parseRollbackArg, RollbackRefused, selectRollbackTarget } from './core/releases.js';
import { badReleases } from './hosts.js';
import { returnToScript, revisionLine, switchTo } from './switch.js';

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

/**
 * Runs what follows a switch (hooks, restart, health check). If it fails, the release is marked bad
 * and, unless --no-auto-rollback, every host of the batch goes back to the release it had before.
 */
export async function rollBackOnFailure(run: TaskRun, release: Release, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    const reason = (error as Error).message;
    const back = (h: HostRun): Promise<StepOutcome> => {
      const mark = markBadScript(h.paths.root, release, release.envKeys.get(h.host.name) ?? null, reason);
      const previous = h.result.previous as string | null | undefined;
      if (!run.options.autoRollback || !previous) {
        return mustRun(h.host, 'marking the release bad', mark.script, { stdin: mark.stdin }).then(() => 'marked bad, left live');
      }
      const command = script(mark.script, returnToScript(run, h, previous, revisionLine('rollback', previous, { from: release.id, reason: 'auto' })));
      return mustRun(h.host, 'automatic rollback', command, { stdin: mark.stdin }).then(() => {
        h.result.live = previous;
        h.state.live = previous;
        return `back on ${previous}`;
      });
    };
    await run.each(run.options.autoRollback ? 'auto-rollback' : 'mark bad', back).catch((e: Error) => run.log.error(`automatic rollback failed:\n${e.message}`));
    const where = run.hosts.map((h) => `${h.host.name} on ${h.state.live ?? '(none)'}`).join(', ');
    const what = run.options.autoRollback ? `rolled back automatically (${where})` : `left live because of --no-auto-rollback (${where})`;
    throw new Error(`release ${release.id} failed after the switch and was ${what}; marked bad. Why:\n${reason}`);
  }
}
