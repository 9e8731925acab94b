// Hook stages (Garment's before/after): ordered shell commands run in the new release on the hosts
// with the stage's roles. The commands are the user's own shell; only values are quoted.
import type { Stage } from './core/config.js';
import type { HostRun, StepOutcome, TaskRun } from './core/fleet.js';
import { mustRun } from './core/host.js';
import { checkRelativePath } from './core/paths.js';
import type { Shell } from './core/sh.js';
import { raw, script, sh } from './core/sh.js';

export function stageScript(stage: Stage, releaseDir: string): Shell {
  const cwd = stage.cwd ? `${releaseDir}/${checkRelativePath(stage.cwd, `hooks "${stage.name}" cwd`)}` : releaseDir;
  const exports = Object.entries(stage.env ?? {}).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`hooks "${stage.name}": env name "${k}" is not a valid variable name`);
    return sh`export ${raw(k)}=${v}`;
  });
  return script(sh`set -e`, sh`cd ${cwd}`, ...exports, ...stage.commands.map((c) => raw(c)));
}

/** Runs the stages of one hook point on a host, in order; the first failing command fails the step. */
export function runHooks(run: TaskRun, point: 'beforeSwitch' | 'afterSwitch', releaseId: string) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const stages = run.config.hooks[point].filter((s) => !s.roles || s.roles.some((r) => h.config.roles.includes(r)));
    if (!stages.length) return { skipped: 'no stages' };
    for (const stage of stages) {
      const output = await mustRun(h.host, `hook "${stage.name}"`, stageScript(stage, h.paths.release(releaseId)));
      if (output.trim()) run.log.detail(h.host.name, output.trim());
    }
    return stages.map((s) => s.name).join(', ');
  };
}
