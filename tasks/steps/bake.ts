// Step: the bake (rollout.bakeSeconds): after a wave's health check, it must keep passing that long.
import type { TaskRun } from '../fleet/task-run.js';
import { mustRun } from '../hosts/host.js';
import { bakeScript, checkFor, healthyIn } from '../scripts/health.js';

/** Polls each host's health check for rollout.bakeSeconds (one command per host); nothing when not configured. */
export async function bake(run: TaskRun, releaseId: string): Promise<void> {
  const seconds = run.config.rollout?.bakeSeconds ?? 0;
  const check = run.config.healthcheck;
  if (!seconds || !check) return;
  await run.each('bake', async (h) => {
    const command = bakeScript(checkFor(check, releaseId), run.config.services, seconds);
    return run.tell(healthyIn(await mustRun(h.host, 'bake', command)), `watch ${check.url} for ${seconds}s`);
  });
}
