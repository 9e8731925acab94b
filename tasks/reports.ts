// Read-only tasks and the lock's escape hatch: `releases`, `check`, `unlock`.
import type { TaskRun } from './core/fleet.js';
import { mustRun } from './core/host.js';
import { newReleaseId } from './core/releases.js';
import type { Verdict } from './service-checks.js';
import { serviceCheckScript, serviceVerdicts } from './service-checks.js';

export async function listReleases(run: TaskRun): Promise<void> {
  await run.inspect();
  for (const h of run.hosts) {
    const rows = [...h.state.releases].reverse().map((id) => {
      const meta = h.state.meta[id];
      return { id, live: id === h.state.live, deployedAt: meta?.deployedAt ?? null, ref: meta?.ref ?? null, commit: meta?.commit ?? null, status: meta?.status ?? 'unknown', reason: meta?.reason };
    });
    h.result.releases = rows;
    h.result.live = h.state.live;
    run.log.info(`${h.host.name} (${h.paths.root}):${rows.length ? '' : ' no releases'}`);
    for (const r of rows) {
      const mark = r.live ? '*' : ' ';
      const bad = r.status === 'bad' ? `  BAD${r.reason ? `: ${r.reason}` : ''}` : '';
      run.log.info(`  ${mark} ${r.id}  ${r.deployedAt ?? '?'}  ref ${r.ref ?? '?'}${bad}`);
    }
  }
}

/**
 * `check`: the config loads, every host answers, and what a deploy needs there works for the deploy
 * user: its deploy root, and each service command as a deploy runs it (service-checks.ts). A host
 * where any of it fails is ✗, each failed verdict with its fix; the task then exits 1.
 */
export async function check(run: TaskRun): Promise<void> {
  run.log.info(`config: valid (${run.config.application}, environment ${run.config.environment})`);
  await run.inspect();
  const services = run.config.services;
  const verdicts = new Map<string, Verdict[]>();
  try {
    await run.each('check', async (h) => {
      const releaseId = h.state.live ?? h.state.releases.at(-1) ?? newReleaseId(new Date(), '0000000');
      const [owner, output] = await Promise.all([
        h.host.readLockOwner(),
        mustRun(h.host, 'checking the service commands', serviceCheckScript(services, h.paths.root, releaseId), { readonly: true }),
      ]);
      const found = serviceVerdicts({ services, application: run.config.application, root: h.paths.root, writable: h.state.writable, releaseId, output });
      verdicts.set(h.host.name, found);
      Object.assign(h.result, { reachable: true, writable: h.state.writable, lock: owner, live: h.state.live, checks: found });
      const failed = found.filter((v) => v.ok === false);
      if (failed.length) throw new Error(`${h.host.name}: ${failed.map((v) => v.name).join(', ')} failed (see the ✗ lines)`);
      const lock = owner ? `locked by ${owner.user}@${owner.machine} (${owner.task} since ${owner.startedAt})` : 'unlocked';
      return `${h.host.address}, writable, ${lock}, live ${h.state.live ?? '(none)'}`;
    });
  } finally {
    for (const [host, found] of verdicts) for (const v of found) run.log.verdict(host, v.name, v.ok, v.detail, v.fix);
  }
}

export async function unlock(run: TaskRun): Promise<void> {
  await run.each('unlock', async (h) => {
    const owner = await h.host.breakLock();
    h.result.removedLock = owner;
    if (!owner) return { skipped: 'not locked' };
    const of = `the lock of ${owner.user}@${owner.machine} (pid ${owner.pid}, ${owner.task} since ${owner.startedAt})`;
    return run.tell(`removed ${of}`, `remove ${of}`);
  });
}
