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
  // Names are checked at load (schema.ts): each is one the shell can export.
  const env = Object.entries(stage.env ?? {});
  const readEnv = env.length ? sh`while IFS= read -r -d '' kv; do export "$kv"; done` : undefined;
  return {
    script: script(sh`set -e`, readEnv, sh`cd ${cwd}`, ...stage.commands.map((c) => raw(c))),
    stdin: env.length ? Buffer.from(env.map(([k, v]) => `${k}=${v}\0`).join('')) : undefined,
  };
}
