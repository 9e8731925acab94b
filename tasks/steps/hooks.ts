// Step: run a hook stage (before/after the switch) on the hosts with its roles.
import type { HostRun, StepOutcome } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import { mustRun } from '../hosts/host.js';
import { stageCommand } from '../scripts/hooks.js';

/** Runs the stages of one hook point on a host, in order; the first failing command fails the step. */
export function runHooks(run: TaskRun, point: 'beforeSwitch' | 'afterSwitch', releaseId: string) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const stages = run.config.hooks[point].filter((s) => !s.roles || s.roles.some((r) => h.config.roles.includes(r)));
    if (!stages.length) return { skipped: 'no stages' };
    for (const stage of stages) {
      const { script: command, stdin } = stageCommand(stage, h.paths.release(releaseId));
      const output = await mustRun(h.host, `hook "${stage.name}"`, command, { stdin });
      if (output.trim()) run.log.detail(h.host.name, output.trim());
    }
    const names = stages.map((s) => s.name).join(', ');
    return run.tell(names, `run ${names}`);
  };
}
