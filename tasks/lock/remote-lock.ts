// The deploy lock on a remote host: an atomic `mkdir` plus an owner file with a token, every
// transition serialised by flock on the host. Staleness is judged by the host's own clock (the
// lock dir's mtime is the holder's heartbeat), so a deployer with a skewed clock can neither steal
// a live lock nor be blocked by a dead one. Only the token's holder, or a stale lock, is removed.
// While a run holds the lock, each of its commands first checks, under the flock, that the owner file
// still carries its token (a run stalled past the stale limit may have lost it to another).
// The lock round trip is also where a deploy root is claimed: slipway acts only in a folder it marked.
import { layout, ROOT_MARK } from '../lib/paths.js';
import { script, sh, type Shell } from '../lib/sh.js';
import type { LockOwner } from './owner.js';

export const STALE_SECONDS = 60;

export const HEARTBEAT_MS = 15_000;

/**
 * The exit status of a command stopped because the run no longer holds the lock (EX_TEMPFAIL), with
 * @@lock-lost on stderr.
 */
export const LOCK_LOST_STATUS = 75;

function lockPaths(deployTo: string) {
  const p = layout(deployTo);
  return { root: p.root, dir: p.lock, owner: p.lockOwner, guard: p.lockGuard };
}

/** What the mark of a deploy root says (its presence is what counts). */
export const ROOT_MARK_TEXT = 'slipway deploy root: slipway may create and delete anything in this folder';

/**
 * Makes sure deployTo is a slipway deploy root before anything in it changes: marked already, or
 * marked now if it is missing, empty, or an older slipway's root (releases/ and revisions.log).
 * Any other folder (`/`, `/var`, someone's project) prints @@not-deploy-root and ends the script.
 */
export function claimRootScript(deployTo: string): Shell {
  const root = layout(deployTo);
  return script(
    sh`if [ ! -e ${root.rootMark} ]; then`,
    sh`  shopt -s nullglob dotglob`,
    sh`  entries=(${root.root}/*)`,
    sh`  shopt -u nullglob dotglob`,
    sh`  if [ ! -e ${root.root} ] || [ \${#entries[@]} -eq 0 ] ||`,
    sh`    { [ -d ${root.releases} ] && [ -f ${root.revisions} ]; }; then`,
    sh`    mkdir -p ${root.root}`,
    sh`    echo ${ROOT_MARK_TEXT} > ${root.rootMark}`,
    sh`  else`,
    sh`    echo @@not-deploy-root`,
    sh`    exit 0`,
    sh`  fi`,
    sh`fi`,
  );
}

/** What to say when claimRootScript refused the folder. */
export function notDeployRootMessage(host: string, deployTo: string): string {
  return (
    `${host}: deployTo ${deployTo} is not a slipway deploy root: ` +
    `it is not empty and has no ${ROOT_MARK} mark, so slipway changes nothing in it. ` +
    'Point deployTo at a new or empty folder; if it is a deploy root of an older slipway, ' +
    `\`touch ${deployTo}/${ROOT_MARK}\` on the host adopts it`
  );
}

/**
 * Goes first in every command of a run that holds the lock: under the flock, the command runs only
 * if the owner file still carries our token (read by bash itself: no process), and the heartbeat is
 * refreshed when `heartbeat`; otherwise it prints @@lock-lost on stderr and exits LOCK_LOST_STATUS.
 */
export function lockGuardScript(deployTo: string, token: string, heartbeat = false): Shell {
  const l = lockPaths(deployTo);
  return script(
    sh`exec 9>>${l.guard}`,
    sh`flock -w 10 9`,
    sh`owner=`,
    sh`{ IFS= read -r -d '' owner < ${l.owner}; } 2>/dev/null || true`,
    sh`case "$owner" in`,
    sh`  *${`"token":"${token}"`}*) ;;`,
    sh`  *)`,
    sh`    echo '@@lock-lost' >&2`,
    sh`    exit ${LOCK_LOST_STATUS}`,
    sh`    ;;`,
    sh`esac`,
    heartbeat ? sh`touch -c ${l.dir}` : undefined,
    sh`exec 9>&-`,
  );
}

/**
 * Prints @@acquired (then @@recovered + the stale owner if it took one over) or @@held + the owner.
 * `deadToken`: a lock whose owner we know is dead (ownerDeadHere: its process is gone) is taken over at once.
 */
export function acquireScript(deployTo: string, owner: LockOwner, deadToken = '', then?: Shell): Shell {
  const l = lockPaths(deployTo);
  return script(
    sh`set -eu`,
    claimRootScript(deployTo),
    sh`exec 9>>${l.guard}`,
    sh`flock -w 10 9`,
    sh`got=`,
    sh`take() {`,
    sh`  mkdir ${l.dir} &&`,
    sh`    printf '%s\\n' ${JSON.stringify(owner)} > ${`${l.owner}.new`} &&`,
    sh`    mv -f ${`${l.owner}.new`} ${l.owner} &&`,
    sh`    echo @@acquired &&`,
    sh`    got=1`,
    sh`}`,
    sh`if [ ! -d ${l.dir} ]; then`,
    sh`  take`,
    sh`else`,
    sh`  age=$(( $(date +%s) - $(stat -c %Y ${l.dir}) ))`,
    sh`  dead=${deadToken}`,
    sh`  if [ "$age" -gt ${STALE_SECONDS} ] ||`,
    sh`    { [ -n "$dead" ] && grep -qF "\\"token\\":\\"$dead\\"" ${l.owner} 2>/dev/null; }; then`,
    sh`    echo "@@recovered $(cat ${l.owner} 2>/dev/null | head -c 4096 | tr -d '\\n')"`,
    sh`    rm -rf ${l.dir} ${l.owner}`,
    sh`    take`,
    sh`  else`,
    sh`    echo "@@held $(cat ${l.owner} 2>/dev/null | head -c 4096 | tr -d '\\n')"`,
    sh`  fi`,
    sh`fi`,
    sh`exec 9>&-`,
    then ? script(sh`if [ -n "$got" ]; then`, sh`  echo @@then`, sh`  ( ${then} )`, sh`fi`) : undefined,
  );
}

/**
 * Removes the lock only if the owner file still carries our token; a final command runs first, its
 * exit status kept, and only while the lock is ours.
 */
export function releaseScript(deployTo: string, token: string, finalCommand?: Shell): Shell {
  const l = lockPaths(deployTo);
  return script(
    // Not `( cmd ) || rc=$?`: on the left of || the shell ignores `set -e` inside cmd, so a failing
    // step in it would run on and report success.
    finalCommand ? script(lockGuardScript(deployTo, token), sh`( ${finalCommand} )`, sh`rc=$?`) : sh`rc=0`,
    sh`exec 9>>${l.guard}`,
    sh`flock -w 10 9`,
    sh`if grep -qF ${`"token":"${token}"`} ${l.owner} 2>/dev/null; then rm -rf ${l.owner} ${l.dir}; fi`,
    sh`exit $rc`,
  );
}

export function readOwnerScript(deployTo: string): Shell {
  const l = lockPaths(deployTo);
  return sh`if [ -d ${l.dir} ]; then cat ${l.owner} 2>/dev/null || echo '{}'; fi`;
}

export function breakScript(deployTo: string): Shell {
  const l = lockPaths(deployTo);
  return script(
    // No deploy root, no lock: nothing to create.
    sh`[ -d ${l.root} ] || exit 0`,
    claimRootScript(deployTo),
    sh`exec 9>>${l.guard}`,
    sh`flock -w 10 9`,
    readOwnerScript(deployTo),
    sh`rm -rf ${l.dir} ${l.owner}`,
  );
}
