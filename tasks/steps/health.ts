// Step: the health check after the switch.
import type { HostRun, StepOutcome } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import { mustRun } from '../hosts/host.js';
import { checkFor, healthCheckScript, healthyIn } from '../scripts/health.js';

export function healthCheck(run: TaskRun, releaseId: string) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const check = run.config.healthcheck;
    if (!check) return { skipped: 'no healthcheck configured' };
    if (run.config.cutover.strategy === 'blue-green')
      return { skipped: 'blue-green: start-slot checked the new slot before traffic moved' };
    const answer = healthyIn(
      await mustRun(h.host, 'health check', healthCheckScript(checkFor(check, releaseId), run.config.services)),
    );
    return run.tell(answer, `check ${check.url}`);
  };
}
