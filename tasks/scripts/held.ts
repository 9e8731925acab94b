// Shell for a command held back (TaskRun.hold) riding on the next one: two commands, one round trip.
import { script, sh, type Shell } from '../lib/sh.js';

/** Printed between the held command's output and the next's: the held one ended with 0. */
export const HELD_SENT = '@@held-sent';

/**
 * The held command in a subshell of its own (its `set -e` stays its own), then, only if it exited 0, the marker
 * and `next`. Its exit status ends the script otherwise: `next` never runs after a failed held command.
 */
export function heldThenScript(held: Shell, next: Shell): Shell {
  return script(
    sh`( ${held} )`,
    sh`held_rc=$?`,
    sh`if [ "$held_rc" -ne 0 ]; then exit "$held_rc"; fi`,
    sh`echo ${HELD_SENT}`,
    next,
  );
}

/** The output of heldThenScript split at the marker; `next` is null when the held command failed (no marker). */
export function splitHeldOutput(stdout: string): { held: string; next: string | null } {
  const mark = new RegExp(`(^|\n)${HELD_SENT}\n`).exec(stdout);
  if (!mark) return { held: stdout, next: null };
  return { held: stdout.slice(0, mark.index + mark[1].length), next: stdout.slice(mark.index + mark[0].length) };
}
