// Shell for nginx and supervisor on the host: the release's rendered configs are installed only when they
// changed, atomically (temp file + rename), validated before the switch (`nginx -t`, supervisor's
// reread) and put back as they were on any failure; the restart and reload after the switch.
import path from 'node:path';
import type { Cutover, Services } from '../config/types.js';
import { layout, releaseFiles } from '../lib/paths.js';
import { SLOTS, type Slot } from '../release/templates.js';
import { raw, script, sh, type Shell } from '../lib/sh.js';
import {
  helperCommand,
  helperPrivilegedCommands,
  installThroughHelper,
  restartThroughHelper,
  restoreThroughHelper,
} from './services-helper.js';

interface ManagedFile {
  kind: 'nginx' | 'supervisor';
  rendered: string;
  target: string;
}

function managedFiles(services: Services, releaseDir: string): ManagedFile[] {
  const files: ManagedFile[] = [];
  if (services.nginx)
    files.push({
      kind: 'nginx',
      rendered: releaseFiles(releaseDir).rendered('nginx.conf'),
      target: services.nginx.site,
    });
  if (services.supervisor)
    files.push({
      kind: 'supervisor',
      rendered: releaseFiles(releaseDir).rendered('supervisor.conf'),
      target: services.supervisor.program,
    });
  return files;
}

const sudo = (services: Services) => raw(services.sudo ? `${services.sudo} ` : '');

/**
 * Every command a deploy of `releaseId` runs with root's powers (install, validate, put back, commit,
 * restart, purge's pid), exactly as the scripts here run them: what the sudo rules must allow. `check`
 * asks sudo about each one (`sudo -n -l <command>`); a unit test holds this list to the scripts. Through
 * the helper that is the helper's own subcommands (its one rule); otherwise the commands services.sudo prefixes.
 */
export function privilegedCommands(
  services: Services,
  deployTo: string,
  releaseId: string,
  strategy: Cutover['strategy'] = 'restart',
): Shell[] {
  if (services.helper) return helperPrivilegedCommands(services, releaseId);
  if (strategy === 'blue-green') return blueGreenPrivilegedCommands(services, deployTo, releaseId);
  const { nginx, supervisor } = services;
  const saved = backups(services, deployTo);
  const replace = (t: string) => {
    const b = saved.find((x) => x.target === t)!;
    return [sh`cp -P ${t} ${b.prev}`, sh`touch ${b.none}`, sh`mv -f ${b.prev} ${t}`, sh`rm -f ${t} ${b.none}`];
  };
  const install = (f: ManagedFile) => [
    ...replace(f.target),
    sh`mkdir -p ${path.posix.dirname(f.target)}`,
    sh`rm -f ${`${f.target}.slipway-new`}`,
    sh`cp ${f.rendered} ${`${f.target}.slipway-new`}`,
    sh`mv -f ${`${f.target}.slipway-new`} ${f.target}`,
  ];
  const ctl = raw(supervisor?.ctl ?? '');
  return [
    ...managedFiles(services, layout(deployTo).release(releaseId)).flatMap(install),
    ...(nginx
      ? [...replace(nginx.enabled), sh`ln -sfn ${nginx.site} ${nginx.enabled}`, raw(nginx.test), raw(nginx.reload)]
      : []),
    sh`rm -f ${saved.flatMap((b) => [b.prev, b.none])}`,
    ...(supervisor
      ? [
          sh`${ctl} reread`,
          sh`${ctl} update ${supervisor.name}`,
          sh`${ctl} restart ${supervisor.name}`,
          sh`${ctl} pid ${supervisor.name}`,
        ]
      : []),
    // The health check asks for the program's state; a failed start or check shows its stderr.
    ...(supervisor ? [sh`${ctl} status ${supervisor.name}`, sh`${ctl} tail ${supervisor.name} stderr`] : []),
  ];
}

/**
 * blue-green without the helper: what its deploy, rollback and their undo run through services.sudo (see
 * scripts/slots.ts). The site installed, validated, put back and committed as above, nginx reloaded (when the
 * site changed; at every move with listen 'port'); the programs file (both slots' sections, composed in
 * run/ by the deploy user) copied into place and reread; and per slot `update`, `start`, `stop`, `status` and
 * `tail … stderr` of <name>-blue and <name>-green — never the one program's update/restart. Purge asks
 * for <name>'s pid, as with restart.
 */
function blueGreenPrivilegedCommands(services: Services, deployTo: string, releaseId: string): Shell[] {
  const { supervisor } = services;
  if (!supervisor) return privilegedCommands(services, deployTo, releaseId);
  // The site's commands as with restart; the commit drops every backup, the program file's included.
  const commit = (s: Services) => sh`rm -f ${backups(s, deployTo).flatMap((b) => [b.prev, b.none])}`;
  const siteOnly = { ...services, supervisor: undefined };
  const site = privilegedCommands(siteOnly, deployTo, releaseId).filter((c) => c.text !== commit(siteOnly).text);
  const next = `${supervisor.program}.slipway-new`;
  const ctl = raw(supervisor.ctl);
  return [
    ...site,
    commit(services),
    sh`rm -f ${next}`,
    sh`cp ${layout(deployTo).programsNext} ${next}`,
    sh`mv -f ${next} ${supervisor.program}`,
    sh`${ctl} reread`,
    ...SLOTS.flatMap((slot) => {
      const program = `${supervisor.name}-${slot}`;
      return [
        sh`${ctl} update ${program}`,
        sh`${ctl} start ${program}`,
        sh`${ctl} stop ${program}`,
        sh`${ctl} status ${program}`,
        sh`${ctl} tail ${program} stderr`,
      ];
    }),
    sh`${ctl} pid ${supervisor.name}`,
  ];
}

/**
 * Prints the supervisor program's pid (0 when stopped), with the privileges of every supervisorctl a
 * deploy runs.
 */
export function programPidCommand(services: Services | undefined): Shell | undefined {
  if (services?.helper) return services.supervisor && helperCommand(services, 'pid');
  return services?.supervisor && sh`${sudo(services)}${raw(services.supervisor.ctl)} pid ${services.supervisor.name}`;
}

/**
 * `nginx -t` as a deploy without the helper runs it (through services.sudo); the pre-switch check of a
 * rendered site runs it so too.
 */
export function nginxTestCommand(services: Services | undefined): Shell | undefined {
  return services?.nginx && sh`${sudo(services)}${raw(services.nginx.test)}`;
}

/**
 * Each installed file and where its backup is kept while a deploy is not committed: in
 * <deployTo>/service-backups, never beside it, where an nginx `include sites-enabled/*` would load it.
 */
function backups(services: Services, deployTo: string): Array<{ target: string; prev: string; none: string }> {
  const p = layout(deployTo);
  const roles = { site: services.nginx?.site, enabled: services.nginx?.enabled, program: services.supervisor?.program };
  return Object.entries(roles).flatMap(([role, target]) =>
    target ? [{ target, prev: p.serviceBackup(role, 'prev'), none: p.serviceBackup(role, 'none') }] : [],
  );
}

/**
 * Shell functions: `restore_configs` puts back what a (possibly dead) earlier run replaced, from
 * the `.prev` copies (or removes what it added, for `.none`); `commit_configs` drops them.
 */
function configFunctions(services: Services, deployTo: string): Shell {
  const s = sudo(services);
  const saved = backups(services, deployTo);
  return script(
    sh`restore_configs() {`,
    ...saved.map((b) =>
      script(
        sh`  if [ -e ${b.prev} ] || [ -L ${b.prev} ]; then`,
        sh`    ${s}mv -f ${b.prev} ${b.target}`,
        sh`  elif [ -e ${b.none} ]; then`,
        sh`    ${s}rm -f ${b.target} ${b.none}`,
        sh`  fi`,
      ),
    ),
    sh`  :; }`,
    sh`commit_configs() { ${s}rm -f ${saved.flatMap((b) => [b.prev, b.none])}; }`,
  );
}

/**
 * Installs the release's configs that differ from the installed ones; validates; restores and fails on a rejection.
 * Any other failing command stops it, named (a failed copy must not go on to blame nginx).
 */
export function installConfigsScript(services: Services, deployTo: string, releaseId: string): Shell {
  if (services.helper) return installThroughHelper(services, releaseId);
  const s = sudo(services);
  const saved = backups(services, deployTo);
  const save = (t: string) => {
    const b = saved.find((x) => x.target === t)!;
    return script(
      sh`  if [ -e ${t} ] || [ -L ${t} ]; then`,
      sh`    ${s}cp -P ${t} ${b.prev}`,
      sh`  else`,
      sh`    ${s}touch ${b.none}`,
      sh`  fi`,
    );
  };
  const lines: Shell[] = [
    // -E: commands failing inside restore_configs are named too.
    sh`set -eE`,
    sh`trap 'printf "failed (exit %s): %s\\n" "$?" "$BASH_COMMAND" >&2' ERR`,
    configFunctions(services, deployTo),
    sh`restore_configs`,
    sh`mkdir -p ${layout(deployTo).serviceBackups}`,
    sh`nginx_changed= supervisor_changed=`,
  ];
  for (const f of managedFiles(services, layout(deployTo).release(releaseId))) {
    lines.push(
      sh`if [ -f ${f.rendered} ] && ! cmp -s ${f.rendered} ${f.target}; then`,
      save(f.target),
      sh`  ${s}mkdir -p ${path.posix.dirname(f.target)}`,
      // A dead run's .slipway-new is removed first: cp into it would keep its mode (0644 for a private
      // config) or follow a link.
      sh`  ${s}rm -f ${`${f.target}.slipway-new`}`,
      sh`  ${s}cp ${f.rendered} ${`${f.target}.slipway-new`}`,
      sh`  ${s}mv -f ${`${f.target}.slipway-new`} ${f.target}`,
      sh`  ${raw(f.kind)}_changed=1`,
      sh`  echo ${`@@changed ${f.kind}`}`,
      sh`fi`,
    );
  }
  const nginx = services.nginx;
  if (nginx) {
    lines.push(
      sh`if [ -n "$nginx_changed" ] && [ "$(readlink ${nginx.enabled} 2>/dev/null)" != ${nginx.site} ]; then`,
      save(nginx.enabled),
      sh`  ${s}ln -sfn ${nginx.site} ${nginx.enabled}`,
      sh`fi`,
      sh`if [ -n "$nginx_changed" ] && ! out=$(${s}${raw(nginx.test)} 2>&1); then`,
      sh`  restore_configs`,
      sh`  printf 'nginx rejected the new site (previous files put back):\\n%s\\n' "$out" >&2`,
      sh`  exit 1`,
      sh`fi`,
    );
  }
  const supervisor = services.supervisor;
  if (supervisor) {
    lines.push(
      // supervisorctl reread exits 1 (printing ERROR: CANT_REREAD …) when a program file does not parse.
      sh`if [ -n "$supervisor_changed" ] && ! out=$(${s}${raw(supervisor.ctl)} reread 2>&1); then`,
      sh`  restore_configs`,
      sh`  ${s}${raw(supervisor.ctl)} reread >/dev/null 2>&1 || true`,
      sh`  printf 'supervisor rejected the new program (previous files put back):\\n%s\\n' "$out" >&2`,
      sh`  exit 1`,
      sh`fi`,
    );
  }
  // The trap names a failing command of this install only: scripts that follow it in one round trip
  // (a rollback's switch, restart and health check) report their own failures.
  lines.push(sh`trap - ERR`);
  return script(...lines);
}

/** Drops the backups of the configs a deploy replaced: it went live (blue-green's move-traffic, restart's restart). */
export function commitConfigsScript(services: Services, deployTo: string): Shell {
  if (services.helper) return helperCommand(services, 'commit');
  return script(configFunctions(services, deployTo), sh`commit_configs`);
}

/** Puts back the configs a failed deploy replaced. */
export function restoreConfigsScript(services: Services, deployTo: string): Shell {
  if (services.helper) return restoreThroughHelper(services);
  return script(configFunctions(services, deployTo), sh`restore_configs`);
}

/**
 * supervisor's status line for the program (blue-green: one slot's program): through the helper, or
 * services.sudo + supervisorctl.
 */
export function programStatusCommand(
  services: Services,
  supervisor: NonNullable<Services['supervisor']>,
  slot?: Slot,
): Shell {
  if (services.helper) return slot ? helperCommand(services, 'slot-status', slot) : helperCommand(services, 'status');
  return sh`${sudo(services)}${raw(supervisor.ctl)} status ${slot ? `${supervisor.name}-${slot}` : supervisor.name}`;
}

/**
 * Prints the last lines of the program's stderr log to stderr, read through supervisor (which can read
 * it whoever the program runs as). The log is shared by every release, so older lines may show too.
 */
export function stderrTail(services: Services, supervisor: NonNullable<Services['supervisor']>, slot?: Slot): Shell {
  const program = slot ? `${supervisor.name}-${slot}` : supervisor.name;
  const helperTail = () => (slot ? helperCommand(services, 'slot-tail', slot) : helperCommand(services, 'tail'));
  const tail = services.helper ? helperTail() : sh`${sudo(services)}${raw(supervisor.ctl)} tail ${program} stderr`;
  return script(
    sh`  printf '%s\\n' ${`last lines of ${program}'s stderr log (earlier runs' lines too):`} >&2`,
    sh`  ${tail} 2>&1 | tail -n 15 >&2`,
  );
}

/** The rendered supervisor program in a release (templates/supervisor.conf.hbs). */
const RENDERED_PROGRAM = '.slipway/supervisor.conf';
const NO_SUCH_FILE =
  "supervisor found no such program: install it on the host, or give its absolute path (supervisord's PATH is " +
  "its own, not your shell's)";

/**
 * After a restart that failed with supervisor's words in `$out`: what it could not start (the live
 * release's command line) and what those words mean, which supervisor's own ("ERROR (no such file)",
 * "ERROR (spawn error)") do not say.
 */
function explainRestartFailure(deployTo: string): Shell {
  const programFile = `${layout(deployTo).current}/${RENDERED_PROGRAM}`;
  return script(
    sh`  printf 'its command (%s): %s\\n' ${RENDERED_PROGRAM} "$(sed -n 's/^command=//p' ${programFile} 2>/dev/null)" >&2`,
    sh`  case "$out" in`,
    sh`    *'no such file'*) printf '%s\\n' ${NO_SUCH_FILE} >&2;;`,
    sh`    *'not executable'*) printf '%s\\n' 'supervisor cannot execute that file: make it executable' >&2;;`,
    sh`  esac`,
  );
}

/**
 * After a switch: supervisor picks up program changes and restarts the program (so it runs the new
 * `current`); nginx reloads when its site changed. `nginxChanged` true/false, or 'shell' to read the
 * `$nginx_changed` left by installConfigsScript in the same script.
 */
export function restartScript(services: Services, deployTo: string, nginxChanged: boolean | 'shell'): Shell {
  if (services.helper) return restartThroughHelper(services, nginxChanged, explainRestartFailure(deployTo));
  const s = sudo(services);
  const lines: Shell[] = [configFunctions(services, deployTo)];
  const supervisor = services.supervisor;
  if (supervisor) {
    const ctl = raw(supervisor.ctl);
    lines.push(
      // supervisor's own words are only "ERROR (spawn error)": why the program died is in its stderr.
      sh`restart_failed() {`,
      sh`  printf 'supervisor could not restart %s:\\n%s\\n' ${supervisor.name} "$out" >&2`,
      explainRestartFailure(deployTo),
      sh`  { ${programStatusCommand(services, supervisor)} 2>&1 || true; } >&2`,
      stderrTail(services, supervisor),
      sh`  exit 1; }`,
      sh`${s}${ctl} reread >/dev/null && ${s}${ctl} update ${supervisor.name} >/dev/null`,
      sh`if ! out=$(${s}${ctl} restart ${supervisor.name} 2>&1); then restart_failed; fi`,
      sh`case "$out" in *ERROR*) restart_failed;; esac`,
    );
  }
  if (services.nginx && nginxChanged !== false) {
    const reload = sh`${s}${raw(services.nginx.reload)}`;
    lines.push(nginxChanged === 'shell' ? sh`if [ -n "\${nginx_changed:-}" ]; then ${reload}; fi` : reload);
  }
  lines.push(sh`commit_configs`);
  return script(...lines);
}

/** The read-only service commands `status` and `check` run: supervisor's view of the program, and nginx -t. */
export function statusCommands(services: Services): { supervisor?: Shell; nginxTest?: Shell } {
  return {
    supervisor: services.supervisor && programStatusCommand(services, services.supervisor),
    nginxTest: services.nginx && (services.helper ? helperCommand(services, 'test') : nginxTestCommand(services)),
  };
}
