// Task `check`: each host's state and every service command a deploy runs, tried read-only.
import type { TaskRun } from '../fleet/task-run.js';
import { mustRun } from '../hosts/host.js';
import { newReleaseId } from '../release/rules.js';
import { serviceCheckScript, serviceVerdicts, type Verdict } from '../scripts/service-checks.js';

/**
 * `check`: the config loads, every host answers, and what a deploy needs there works for the deploy
 * user: its deploy root, and each service command as a deploy runs it (scripts/service-checks.ts). A host
 * where any of it fails is ✗, each failed verdict with its fix; the task then exits 1.
 */
export async function check(run: TaskRun): Promise<void> {
  run.log.line(`config: valid (${run.config.application}, environment ${run.config.environment})`);
  await run.inspect();
  const services = run.config.services;
  const verdicts = new Map<string, Verdict[]>();
  try {
    await run.each('check', async (h) => {
      const releaseId = h.state.live ?? h.state.releases.at(-1) ?? newReleaseId(new Date(), '0000000');
      const [owner, output] = await Promise.all([
        h.host.readLockOwner(),
        mustRun(h.host, 'checking the service commands', serviceCheckScript(services, h.paths.root, releaseId), {
          readonly: true,
        }),
      ]);
      const found = serviceVerdicts({
        services,
        application: run.config.application,
        root: h.paths.root,
        writable: h.state.writable,
        releaseId,
        output,
      });
      verdicts.set(h.host.name, found);
      Object.assign(h.report, {
        reachable: true,
        writable: h.state.writable,
        lock: owner,
        live: h.state.live,
        checks: found,
      });
      const failed = found.filter((v) => v.ok === false);
      if (failed.length)
        throw new Error(`${h.host.name}: ${failed.map((v) => v.name).join(', ')} failed (see the ✗ lines)`);
      const lock = owner
        ? `locked by ${owner.user}@${owner.machine} (${owner.task} since ${owner.startedAt})`
        : 'unlocked';
      return `${h.host.address}, writable, ${lock}, live ${h.state.live ?? '(none)'}`;
    });
  } finally {
    for (const [host, found] of verdicts) for (const v of found) run.log.verdict(host, v.name, v.ok, v.detail, v.fix);
  }
}
