// Task `unlock`: the lock's escape hatch, breaks a lock left by a run that died.
import type { TaskRun } from '../fleet/task-run.js';

export async function unlock(run: TaskRun): Promise<void> {
  await run.each('unlock', async (h) => {
    const owner = await h.host.breakLock();
    h.report.removedLock = owner;
    if (!owner) return { skipped: 'not locked' };
    const of = `the lock of ${owner.user}@${owner.machine} (pid ${owner.pid}, ${owner.task} since ${owner.startedAt})`;
    return run.tell(`removed ${of}`, `remove ${of}`);
  });
}
