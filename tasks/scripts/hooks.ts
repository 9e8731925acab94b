// Shell for a hook stage: the user's commands run in order inside the new release.
import type { Stage } from '../config/types.js';
import { checkRelativePath } from '../lib/paths.js';
import { raw, script, sh, type Shell } from '../lib/sh.js';

/**
 * A stage as a script, and its env as NUL-separated KEY=value on stdin: values stay off the command
 * line, where `ps` on the host would show them (they are often secrets).
 */
export function stageCommand(stage: Stage, releaseDir: string): { script: Shell; stdin?: Buffer } {
  const cwd = stage.cwd ? `${releaseDir}/${checkRelativePath(stage.cwd, `hooks "${stage.name}" cwd`)}` : releaseDir;
  const env = Object.entries(stage.env ?? {});
  for (const [k] of env) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
      throw new Error(`hooks "${stage.name}": env name "${k}" is not a valid variable name`);
  }
  const readEnv = env.length ? sh`while IFS= read -r -d '' kv; do export "$kv"; done` : undefined;
  return {
    script: script(sh`set -e`, readEnv, sh`cd ${cwd}`, ...stage.commands.map((c) => raw(c))),
    stdin: env.length ? Buffer.from(env.map(([k, v]) => `${k}=${v}\0`).join('')) : undefined,
  };
}
