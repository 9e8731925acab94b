// Hook stages (Garment's before/after): ordered shell commands run in the new release on the hosts
// with the stage's roles. The commands are the user's own shell; only values are quoted.
import type { Stage } from './core/config.js';
import type { HostRun, StepOutcome, TaskRun } from './core/fleet.js';
import { mustRun } from './core/host.js';
import { checkRelativePath } from './core/paths.js';
import type { Shell } from './core/sh.js';
import { raw, script, sh } from './core/sh.js';

/**
 * A stage as a script, and its env as NUL-separated KEY=value on stdin: values stay off the command
 * line, where `ps` on the host would show them (they are often secrets).
 */
export function stageCommand(stage: Stage, releaseDir: string): { script: Shell; stdin?: Buffer } {
  const cwd = stage.cwd ? `${releaseDir}/${checkRelativePath(stage.cwd, `hooks "${stage.name}" cwd`)}` : releaseDir;
  const env = Object.entries(stage.env ?? {});
  for (const [k] of env) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`hooks "${stage.name}": env name "${k}" is not a valid variable name`);
  }
  const readEnv = env.length ? sh`while IFS= read -r -d '' kv; do export "$kv"; done` : undefined;
  return {
    script: script(sh`set -e`, readEnv, sh`cd ${cwd}`, ...stage.commands.map((c) => raw(c))),
    stdin: env.length ? Buffer.from(env.map(([k, v]) => `${k}=${v}\0`).join('')) : undefined,
  };
}

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
