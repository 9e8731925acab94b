// Read-only tasks and the lock's escape hatch: `releases`, `check`, `unlock`.
import type { TaskRun } from './core/fleet.js';

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

export async function check(run: TaskRun): Promise<void> {
  run.log.info(`config: valid (${run.config.application}, environment ${run.config.environment})`);
  await run.inspect();
  const problems: string[] = [];
  await run.each('check', async (h) => {
    const owner = await h.host.readLockOwner();
    h.result.reachable = true;
    h.result.writable = h.state.writable;
    h.result.lock = owner;
    h.result.live = h.state.live;
    if (!h.state.writable) problems.push(`${h.host.name}: deploy root ${h.paths.root} is not writable`);
    const lock = owner ? `locked by ${owner.user}@${owner.machine} (${owner.task} since ${owner.startedAt})` : 'unlocked';
    return `${h.host.address}, ${h.state.writable ? 'writable' : 'NOT writable'}, ${lock}, live ${h.state.live ?? '(none)'}`;
  });
  if (problems.length) throw new Error(problems.join('\n'));
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
