// Shell for the switch: `current` repointed atomically (a temp link renamed over it).
import { currentTarget, layout } from '../lib/paths.js';
import { script, sh, type Shell } from '../lib/sh.js';

/** `current` → releases/<id>, atomically; appends the action to revisions.log in one write. */
export function switchScript(deployTo: string, id: string, logLine: string): Shell {
  const p = layout(deployTo);
  const next = p.currentNext;
  return script(
    sh`set -eu`,
    sh`[ -d ${p.release(id)} ] || { echo ${`release ${id} is not in ${p.releases}`} >&2; exit 1; }`,
    sh`ln -sfn ${currentTarget(id)} ${next}`,
    sh`mv -T ${next} ${p.current}`,
    sh`printf '%s\\n' ${logLine.replace(/\n/g, ' ')} >> ${p.revisions}`,
  );
}
