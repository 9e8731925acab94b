// Step: the bake (rollout.bakeSeconds): after a wave's health check, it must keep passing that long.
import type { HostRun } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import { mustRun } from '../hosts/host.js';
import { bakeScript, checkFor, type HealthCheck, healthyIn } from '../scripts/health.js';
import { portOf, slotCheck, slotProgram } from '../scripts/slots.js';

/**
 * Polls each host's health check for rollout.bakeSeconds (one command per host); nothing when not configured.
 * blue-green: the live slot itself, on its own socket or port, and that slot's program (healthcheck.url is
 * only the path there, as for start-slot); the old slot still runs (drain-slot comes after the bake), so a
 * failed bake sends traffic back to it through the same cutover (rollBackOnFailure → backToOldSlotScript).
 */
export async function bake(run: TaskRun, releaseId: string): Promise<void> {
  const seconds = run.config.rollout?.bakeSeconds ?? 0;
  const check = run.config.healthcheck;
  if (!seconds || !check) return;
  await run.each('bake', async (h) => {
    const { poll, slot, what } = watched(run, h, checkFor(check, releaseId));
    const command = bakeScript(poll, run.config.services, seconds, slot);
    const said = healthyIn(await mustRun(h.host, 'bake', command));
    return run.tell(slot ? `${what}: ${said}` : said, `watch ${what} for ${seconds}s`);
  });
}

/** What the bake polls on a host: healthcheck.url; with blue-green the live slot, on its socket or port. */
function watched(run: TaskRun, h: HostRun, check: HealthCheck) {
  const cutover = run.config.cutover;
  const services = run.config.services;
  const slot = h.report.slot?.started ?? h.state.slots?.live ?? undefined;
  if (cutover.strategy !== 'blue-green' || !services || !slot) return { poll: check, what: check.url };
  const port = portOf(cutover, slot);
  const poll = slotCheck(check, h.paths.root, slot, port);
  const where = port ? `port ${port}` : h.paths.slotSocket(slot);
  return { poll, slot, what: `${slotProgram(services, slot)} on ${where}` };
}
