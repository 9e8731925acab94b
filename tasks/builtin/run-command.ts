// Task `run:<command>`: an ad-hoc shell command in the live release on the selected hosts, output per host.
import type { ResolvedConfig } from '../config/types.js';
import type { TaskRun } from '../fleet/task-run.js';
import { UsageError } from '../lib/errors.js';
import { hostOutput, lineWriter } from '../lib/log.js';
import { raw, script, sh } from '../lib/sh.js';
import { inLiveRelease } from '../scripts/everyday.js';

/** run needs its command: `run:<command>`, one word on the deployer's command line. */
export function checkRunArgs(args: string[], _config?: ResolvedConfig): void {
  if (!args.length)
    throw new UsageError('run needs a command: run:<command>, quoted as one word, e.g. run:"npm run migrate"');
}

/**
 * The `run` task. The text after `run:` (commas included: the CLI splits task arguments at commas, joined back
 * here) is a shell command line, run as written by bash in the live release: pipes, `&&` and quotes work
 * as in a hook's commands. Its stdout and stderr print as they come, each line after the host; a host where it
 * exits non-zero fails the task (exit 1), naming every such host.
 */
export async function runCommand(run: TaskRun): Promise<void> {
  checkRunArgs(run.args);
  const command = run.args.join(',');
  await run.each('run', async (h) => {
    const print = (text: string) => hostOutput(run.log, h.config.name, text);
    const result = await h.host.exec(script(sh`exec 2>&1`, inLiveRelease(h.paths.current, raw(command))), {
      stdout: lineWriter(print),
    });
    if (result.code === 0) return run.tell('exit 0', `run ${command}`);
    throw new Error(
      `${h.config.name}: the command ${result.code === null ? 'ended without an exit status' : `exited ${result.code}`}`,
    );
  });
}
