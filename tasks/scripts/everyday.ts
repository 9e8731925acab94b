// Shell for the everyday tasks: a command in the live release (run, ssh), and the program's logs (logs).
import { raw, script, sh, type Shell } from '../lib/sh.js';

/** Runs `command` in the live release (`current`), or fails saying there is none. */
export function inLiveRelease(current: string, command: Shell): Shell {
  return script(
    sh`if [ ! -d ${current} ]; then echo ${`no live release: ${current} does not exist (deploy first)`} >&2; exit 1; fi`,
    sh`cd ${current} || exit 1`,
    command,
  );
}

/** The words of a command (ssh -- WORD...), each one argument: what was typed is what runs, never re-split. */
export function commandWords(words: readonly string[]): Shell {
  return sh`${[...words]}`;
}

/** The interactive shell of the `ssh` task: the user's login shell on the host, in the live release. */
export const loginShell: Shell = raw('exec "${SHELL:-/bin/sh}" -l');

/** The program's two logs, where the default supervisor template writes them. */
export function logFiles(logDir: string, application: string): { out: string; err: string } {
  return { out: `${logDir}/${application}.out.log`, err: `${logDir}/${application}.err.log` };
}

/**
 * The last `lines` lines of each log that exists, each file after a `==> file <==` header (tail -v); with
 * `follow`, then every new line until killed (tail -F: a log that is rotated or appears later is followed too).
 * Prints `@@no-logs` when neither exists (and not following).
 */
export function logsScript(files: { out: string; err: string }, lines: number, follow: boolean): Shell {
  if (follow) return sh`exec tail -v -n ${lines} -F -- ${files.out} ${files.err} 2>/dev/null`;
  return script(
    sh`set --`,
    sh`for f in ${files.out} ${files.err}; do if [ -e "$f" ]; then set -- "$@" "$f"; fi; done`,
    sh`if [ $# -eq 0 ]; then echo @@no-logs; exit 0; fi`,
    sh`exec tail -v -n ${lines} -- "$@"`,
  );
}
