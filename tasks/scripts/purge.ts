// Shell for purge: removes the releases and environments the plan names, skipping any a process still uses.
import { layout } from '../lib/paths.js';
import { script, sh, type Shell } from '../lib/sh.js';
import type { PurgePlan } from '../release/rules.js';

/**
 * The program a deploy restarts may run as another user (runAs), whose /proc/<pid>/cwd the deploy user
 * cannot read, so the scan of every process's working directory does not see it. Supervisor gives its
 * pid, and /proc/<pid>/stat (readable by anyone) when it started: if that was after `current` last
 * changed, it resolved `current` then and works in the live release, which purge keeps anyway.
 * Otherwise (a deploy that never got to its restart) which release it works in cannot be read without
 * root, so every release is kept until it restarts. Times in centiseconds of the host's clock.
 */
function programCheck(deployTo: string, pidCommand: Shell): Shell {
  const p = layout(deployTo);
  return script(
    sh`blind=`,
    sh`pid=$(${pidCommand} 2>/dev/null) || true`,
    sh`cs() {`,
    sh`  local t=$1 f`,
    sh`  f=\${t#*[.,]}00`,
    sh`  echo $(( \${t%[.,]*} * 100 + 10#\${f:0:2} ))`,
    sh`}`,
    sh`case "$pid" in`,
    sh`  ''|0|*[!0-9]*) ;;`,
    sh`  *)`,
    sh`    if ! readlink /proc/$pid/cwd >/dev/null 2>&1 && stat=$(cat /proc/$pid/stat 2>/dev/null); then`,
    sh`      set -- \${stat##*) }`,
    sh`      ticks=\${20}`,
    sh`      read -r up _ < /proc/uptime`,
    sh`      started=$(( $(cs "\${EPOCHREALTIME:-$(date +%s.%N)}") - $(cs "$up") + ticks * 100 / $(getconf CLK_TCK) ))`,
    sh`      switched=$(find ${p.current} -maxdepth 0 -printf '%T@' 2>/dev/null) &&`,
    sh`        switched=$(cs "$switched") || switched=$started`,
    // A restart comes in a later command than its switch; 50 ms of slack covers the clocks' rounding.
    sh`      if [ "$started" -le $(( switched + 5 )) ]; then`,
    sh`        blind="the program (pid $pid, another user) has run since before the last switch: "`,
    sh`        blind+="the release it works in cannot be read, so none is removed until it restarts"`,
    sh`      fi`,
    sh`    fi`,
    sh`    ;;`,
    sh`esac`,
  );
}

/** Each removal renames out of releases/ first, so a purge cut short never leaves a partial release there. */
export function purgeScript(deployTo: string, plan: PurgePlan, programPid?: Shell): Shell {
  const p = layout(deployTo);
  return script(
    sh`set -eu`,
    // Every process's working directory, read by one program (a readlink per process would cost one each).
    plan.releases.length
      ? script(sh`nl=$'\n'`, sh`cwds=$nl$(find /proc/[0-9]*/cwd -maxdepth 0 -printf '%l\n' 2>/dev/null || true)$nl`)
      : undefined,
    plan.releases.length && programPid ? programCheck(deployTo, programPid) : sh`blind=`,
    sh`in_use() {`,
    sh`  why=$blind`,
    sh`  [ -n "$why" ] && return 0`,
    sh`  why='a running process works in it'`,
    sh`  case "$cwds" in *"$nl$1$nl"*|*"$nl$1/"*) return 0;; esac`,
    sh`  return 1`,
    sh`}`,
    ...plan.releases.map((id) =>
      script(
        sh`if [ -d ${p.release(id)} ]; then`,
        sh`  if in_use "$(cd ${p.release(id)} && pwd -P)"; then`,
        sh`    echo ${`kept ${id}:`} "$why"`,
        sh`  else`,
        sh`    mv -T ${p.release(id)} ${p.purging(id)} && rm -rf ${p.purging(id)} && echo ${`removed ${id}`}`,
        sh`  fi`,
        sh`fi`,
      ),
    ),
    ...plan.envs.map((key) =>
      script(
        sh`if [ -d ${p.env(key)} ]; then`,
        sh`  mv -T ${p.env(key)} ${p.purgingEnv(key)} && rm -rf ${p.purgingEnv(key)}`,
        sh`fi`,
      ),
    ),
  );
}

/** The releases a purge script's output says it removed. */
export function purgedIn(output: string): string[] {
  return [...output.matchAll(/^removed (\S+)$/gm)].map((m) => m[1]);
}
