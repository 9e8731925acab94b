// The deploy lock on a remote host: an atomic `mkdir` plus an owner file with a token, every
// transition serialised by flock on the host. Staleness is judged by the host's own clock (the
// lock dir's mtime is the holder's heartbeat), so a deployer with a skewed clock can neither steal
// a live lock nor be blocked by a dead one. Only the token's holder, or a stale lock, is removed.
import type { LockOwner } from './host.js';
import { layout } from './paths.js';
import type { Shell } from './sh.js';
import { script, sh } from './sh.js';

export const STALE_SECONDS = 60;
export const HEARTBEAT_MS = 15_000;

function lockPaths(deployTo: string) {
  const root = layout(deployTo).root;
  return { root, dir: `${root}/deploy.lock`, owner: `${root}/deploy.lock.owner`, guard: `${root}/.deploy.lock.guard` };
}

/**
 * Prints @@acquired (then @@recovered + the stale owner if it took one over) or @@held + the owner.
 * `deadToken`: a lock whose owner we know is dead (its pid is gone on our machine) is taken over at once.
 */
export function acquireScript(deployTo: string, owner: LockOwner, deadToken = '', then?: Shell): Shell {
  const l = lockPaths(deployTo);
  return script(
    sh`set -eu`,
    sh`[ -d ${l.root} ] || mkdir -p ${l.root}`,
    sh`exec 9>>${l.guard}`,
    sh`flock -w 10 9`,
    sh`got=`,
    sh`take() { mkdir ${l.dir} && printf '%s\\n' ${JSON.stringify(owner)} > ${`${l.owner}.new`} && mv -f ${`${l.owner}.new`} ${l.owner} && echo @@acquired && got=1; }`,
    sh`if [ ! -d ${l.dir} ]; then take`,
    sh`else`,
    sh`  age=$(( $(date +%s) - $(stat -c %Y ${l.dir}) ))`,
    sh`  dead=${deadToken}`,
    sh`  if [ "$age" -gt ${STALE_SECONDS} ] || { [ -n "$dead" ] && grep -qF "\\"token\\":\\"$dead\\"" ${l.owner} 2>/dev/null; }; then`,
    sh`    echo "@@recovered $(cat ${l.owner} 2>/dev/null | head -c 4096 | tr -d '\\n')"`,
    sh`    rm -rf ${l.dir} ${l.owner}; take`,
    sh`  else echo "@@held $(cat ${l.owner} 2>/dev/null | head -c 4096 | tr -d '\\n')"`,
    sh`  fi`,
    sh`fi`,
    sh`exec 9>&-`,
    then ? sh`if [ -n "$got" ]; then echo @@then; ( ${then} ); fi` : undefined,
  );
}

/** Removes the lock only if the owner file still carries our token; a final command runs first, its exit status kept. */
export function releaseScript(deployTo: string, token: string, finalCommand?: Shell): Shell {
  const l = lockPaths(deployTo);
  return script(
    // Not `( cmd ) || rc=$?`: on the left of || the shell ignores `set -e` inside cmd, so a failing
    // step in it would run on and report success.
    finalCommand ? script(sh`( ${finalCommand} )`, sh`rc=$?`) : sh`rc=0`,
    sh`exec 9>>${l.guard}`,
    sh`flock -w 10 9`,
    sh`if grep -qF ${`"token":"${token}"`} ${l.owner} 2>/dev/null; then rm -rf ${l.owner} ${l.dir}; fi`,
    sh`exit $rc`,
  );
}

export function heartbeatScript(deployTo: string): Shell {
  return sh`touch -c ${lockPaths(deployTo).dir}`;
}

export function readOwnerScript(deployTo: string): Shell {
  const l = lockPaths(deployTo);
  return sh`if [ -d ${l.dir} ]; then cat ${l.owner} 2>/dev/null || echo '{}'; fi`;
}

export function breakScript(deployTo: string): Shell {
  const l = lockPaths(deployTo);
  return script(sh`exec 9>>${l.guard}`, sh`flock -w 10 9`, sh`if [ -d ${l.dir} ]; then cat ${l.owner} 2>/dev/null || echo '{}'; fi`, sh`rm -rf ${l.dir} ${l.owner}`);
}
