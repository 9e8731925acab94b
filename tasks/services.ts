// nginx and supervisor on the host: the release's rendered configs are installed only when they
// changed, atomically (temp file + rename), validated before the switch (`nginx -t`, supervisor's
// reread) and put back as they were on any failure. After the switch: restart, reload, health check
// (good answers in a row from one process supervisor calls RUNNING; the program's stderr when it fails).
import path from 'node:path';
import type { Services } from './core/config.js';
import type { HostRun, StepOutcome, TaskRun } from './core/fleet.js';
import { mustRun } from './core/host.js';
import { layout } from './core/paths.js';
import type { Shell } from './core/sh.js';
import { raw, script, sh } from './core/sh.js';
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
  if (services.nginx) files.push({ kind: 'nginx', rendered: `${releaseDir}/.slipway/nginx.conf`, target: services.nginx.site });
  if (services.supervisor) files.push({ kind: 'supervisor', rendered: `${releaseDir}/.slipway/supervisor.conf`, target: services.supervisor.program });
  return files;
}

const sudo = (services: Services) => raw(services.sudo ? `${services.sudo} ` : '');

/**
/**
 * Every command a deploy of `releaseId` runs with root's powers (install, validate, put back, commit,
 * restart, purge's pid), exactly as the scripts here run them: what the sudo rules must allow. `check`
 * asks sudo about each one (`sudo -n -l <command>`); a unit test holds this list to the scripts. Through
 * the helper that is the helper's own subcommands (its one rule); otherwise the commands services.sudo prefixes.
 */
export function privilegedCommands(services: Services, deployTo: string, releaseId: string): Shell[] {
  if (services.helper) return helperPrivilegedCommands(services, releaseId);
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
    ...(nginx ? [...replace(nginx.enabled), sh`ln -sfn ${nginx.site} ${nginx.enabled}`, raw(nginx.test), raw(nginx.reload)] : []),
    sh`rm -f ${saved.flatMap((b) => [b.prev, b.none])}`,
    ...(supervisor
      ? [sh`${ctl} reread`, sh`${ctl} update ${supervisor.name}`, sh`${ctl} restart ${supervisor.name}`, sh`${ctl} pid ${supervisor.name}`]
      : []),
    // The health check asks for the program's state; a failed start or check shows its stderr.
    ...(supervisor ? [sh`${ctl} status ${supervisor.name}`, sh`${ctl} tail ${supervisor.name} stderr`] : []),
  ];
}

/** Prints the supervisor program's pid (0 when stopped), with the privileges of every supervisorctl a deploy runs. */
export function programPidCommand(services: Services | undefined): Shell | undefined {
  if (services?.helper) return services.supervisor && helperCommand(services, 'pid');
  return services?.supervisor && sh`${sudo(services)}${raw(services.supervisor.ctl)} pid ${services.supervisor.name}`;
}

/** `nginx -t` as a deploy without the helper runs it (through services.sudo); the pre-switch check of a rendered site runs it so too. */
export function nginxTestCommand(services: Services | undefined): Shell | undefined {
  return services?.nginx && sh`${sudo(services)}${raw(services.nginx.test)}`;
}

/**
 * Each installed file and where its backup is kept while a deploy is not committed: in
 * <deployTo>/service-backups, never beside it, where an nginx `include sites-enabled/*` would load it.
 */
function backups(services: Services, deployTo: string): Array<{ target: string; prev: string; none: string }> {
  const dir = layout(deployTo).serviceBackups;
  const roles = { site: services.nginx?.site, enabled: services.nginx?.enabled, program: services.supervisor?.program };
  return Object.entries(roles).flatMap(([role, target]) => (target ? [{ target, prev: `${dir}/${role}.prev`, none: `${dir}/${role}.none` }] : []));
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
    ...saved.map(
      (b) => sh`  if [ -e ${b.prev} ] || [ -L ${b.prev} ]; then ${s}mv -f ${b.prev} ${b.target}; elif [ -e ${b.none} ]; then ${s}rm -f ${b.target} ${b.none}; fi`,
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
    return sh`  if [ -e ${t} ] || [ -L ${t} ]; then ${s}cp -P ${t} ${b.prev}; else ${s}touch ${b.none}; fi`;
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
      // A dead run's .slipway-new is removed first: cp into it would keep its mode (0644 for a private config) or follow a link.
      sh`  ${s}rm -f ${`${f.target}.slipway-new`}`,
      sh`  ${s}cp ${f.rendered} ${`${f.target}.slipway-new`}`,
      sh`  ${s}mv -f ${`${f.target}.slipway-new`} ${f.target}`,
      sh`  ${raw(f.kind)}_changed=1; echo ${`@@changed ${f.kind}`}`,
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
      sh`if [ -n "$nginx_changed" ] && ! out=$(${s}${raw(nginx.test)} 2>&1); then restore_configs; printf 'nginx rejected the new site (previous files put back):\\n%s\\n' "$out" >&2; exit 1; fi`,
    );
  }
  const supervisor = services.supervisor;
  if (supervisor) {
    lines.push(
      // supervisorctl reread exits 1 (printing ERROR: CANT_REREAD …) when a program file does not parse.
      sh`if [ -n "$supervisor_changed" ] && ! out=$(${s}${raw(supervisor.ctl)} reread 2>&1); then restore_configs; ${s}${raw(supervisor.ctl)} reread >/dev/null 2>&1 || true; printf 'supervisor rejected the new program (previous files put back):\\n%s\\n' "$out" >&2; exit 1; fi`,
    );
  }
  // The trap names a failing command of this install only: scripts that follow it in one round trip
  // (a rollback's switch, restart and health check) report their own failures.
  lines.push(sh`trap - ERR`);
  return script(...lines);
}

/** Puts back the configs a failed deploy replaced. */
export function restoreConfigsScript(services: Services, deployTo: string): Shell {
  if (services.helper) return restoreThroughHelper(services);
  return script(configFunctions(services, deployTo), sh`restore_configs`);
}

/** supervisor's status line for the program: through the helper, or services.sudo + supervisorctl. */
function programStatusCommand(services: Services, supervisor: NonNullable<Services['supervisor']>): Shell {
  return services.helper ? helperCommand(services, 'status') : sh`${sudo(services)}${raw(supervisor.ctl)} status ${supervisor.name}`;
}

/**
 * Prints the last lines of the program's stderr log to stderr, read through supervisor (which can read
 * it whoever the program runs as). The log is shared by every release, so older lines may show too.
 */
function stderrTail(services: Services, supervisor: NonNullable<Services['supervisor']>): Shell {
  return script(
    sh`  printf '%s\\n' ${`last lines of ${supervisor.name}'s stderr log (earlier runs' lines too):`} >&2`,
    sh`  ${services.helper ? helperCommand(services, 'tail') : sh`${sudo(services)}${raw(supervisor.ctl)} tail ${supervisor.name} stderr`} 2>&1 | tail -n 15 >&2`,
  );
}

/**
 * After a switch: supervisor picks up program changes and restarts the program (so it runs the new
 * `current`); nginx reloads when its site changed. `nginxChanged` true/false, or 'shell' to read the
 * `$nginx_changed` left by installConfigsScript in the same script.
 */
export function restartScript(services: Services, deployTo: string, nginxChanged: boolean | 'shell'): Shell {
  if (services.helper) return restartThroughHelper(services, nginxChanged);
  const s = sudo(services);
  const lines: Shell[] = [configFunctions(services, deployTo)];
  const supervisor = services.supervisor;
  if (supervisor) {
    const ctl = raw(supervisor.ctl);
    lines.push(
      // supervisor's own words are only "ERROR (spawn error)": why the program died is in its stderr.
      sh`restart_failed() {`,
      sh`  printf 'supervisor could not restart %s:\\n%s\\n' ${supervisor.name} "$out" >&2`,
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

export interface HealthCheck {
  url: string;
  expectStatus: number;
  expectBody?: string;
  timeoutSeconds: number;
  /** Good answers in a row needed, `intervalSeconds` apart. */
  successes: number;
  intervalSeconds: number;
}

/** The check for one release: `{{releaseId}}` in expectBody stands for its id. */
export function checkFor(check: HealthCheck, releaseId: string): HealthCheck {
  return { ...check, expectBody: check.expectBody?.replaceAll('{{releaseId}}', releaseId) };
}

/**
 * GETs the URL on the host until it answers as expected `successes` times in a row, `intervalSeconds`
 * apart, or the timeout passes. With a supervisor program, an answer counts only while supervisor says
 * RUNNING, and the count starts again when its pid changed: a release that crashes and is restarted
 * between two answers is not healthy. Prints `@@healthy <what it saw>`; on failure why, supervisor's
 * state and the program's stderr.
 */
export function healthCheckScript(check: HealthCheck, services?: Services): Shell {
  const supervisor = services?.supervisor;
  const timeout = Math.ceil(check.timeoutSeconds);
  const times = check.successes > 1 ? ` ${check.successes} times in a row` : '';
  return script(
    sh`url=${check.url} want=${check.expectStatus} body=${check.expectBody ?? ''} successes=${check.successes} deadline=$(( $(date +%s) + ${timeout} ))`,
    sh`tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT`,
    sh`get() { if command -v curl >/dev/null; then curl -s -o "$tmp" -w '%{http_code}' --max-time 5 "$url"; else python3 -c 'import sys,urllib.request as u
try: r=u.urlopen(sys.argv[1], timeout=5); s=r.status; b=r.read()
except u.HTTPError as e: s=e.code; b=e.read()
open(sys.argv[2],"wb").write(b); print(s)' "$url" "$tmp"; fi; }`,
    supervisor
      ? script(
          sh`program_state() { ${programStatusCommand(services!, supervisor)} 2>&1 | head -n 1 | tr -s ' '; }`,
          sh`running_pid() { printf '%s\\n' "$1" | awk '$2 == "RUNNING" { sub(/,$/, "", $4); print $4 }'; }`,
        )
      : script(sh`program_state() { :; }`, sh`running_pid() { echo -; }`),
    sh`streak=0 seen= state= why=`,
    sh`while :; do`,
    sh`  got=$(get 2>/dev/null) || got=`,
    sh`  if [ "$got" = "$want" ] && { [ -z "$body" ] || grep -qF -- "$body" "$tmp"; }; then`,
    sh`    state=$(program_state); pid=$(running_pid "$state")`,
    sh`    if [ -z "$pid" ]; then streak=0; why="$url answered $got, but supervisor says: $state"`,
    sh`    elif [ "$streak" -gt 0 ] && [ "$pid" != "$seen" ]; then streak=1; why="$url answered $got, but the program restarted between two answers"`,
    sh`    else streak=$((streak + 1)); why="$url answered $got only $streak of $successes times in a row"; fi`,
    sh`    seen=$pid`,
    sh`    if [ "$streak" -ge "$successes" ]; then echo "@@healthy $url answered $got${raw(times)}\${state:+; $state}"; exit 0; fi`,
    sh`  else`,
    sh`    streak=0`,
    sh`    said=$(head -c 200 "$tmp" | tr '\\n' ' ')`,
    sh`    why=$(printf '%s answered %s (expected %s%s): %s' "$url" "\${got:-nothing}" "$want" "\${body:+ with body containing $body}" "$said")`,
    sh`  fi`,
    sh`  if [ "$(date +%s)" -ge "$deadline" ]; then`,
    sh`    printf 'health check failed after %ss: %s\\n' ${timeout} "$why" >&2`,
    supervisor && script(sh`    printf 'supervisor: %s\\n' "$(program_state)" >&2`, stderrTail(services!, supervisor)),
    sh`    exit 1`,
    sh`  fi`,
    // Within a streak, wait the interval; until the first good answer, ask again soon.
    sh`  if [ "$streak" -gt 0 ]; then sleep ${check.intervalSeconds}; else sleep 0.5; fi`,
    sh`done`,
  );
}

/** What a passed health check saw, from its `@@healthy` line. */
export function healthyIn(output: string): string {
  return /^@@healthy (.*)$/m.exec(output)?.[1] ?? '';
}

/** Prepare step: install the new release's configs where they changed, validated, before the switch. */
export function installConfigs(run: TaskRun, releaseId: string) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const services = run.config.services;
    if (!services) return { skipped: 'no services configured' };
    const output = await mustRun(h.host, 'installing service configs', installConfigsScript(services, h.paths.root, releaseId));
    const changed = [...output.matchAll(/^@@changed (\w+)$/gm)].map((m) => m[1]);
    h.result.configsChanged = changed;
    return run.tell(changed.length ? `installed ${changed.join(', ')} (validated)` : 'unchanged', 'install the configs that changed (validated)');
  };
}

/** After the switch: restart the program, reload nginx if its site changed. */
export function restartServices(run: TaskRun) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const services = run.config.services;
    if (!services) return { skipped: 'no services configured' };
    // A dry run does not know whether the site changed: it shows the reload, which runs only if it did.
    const nginxChanged = run.options.dryRun || ((h.result.configsChanged as string[] | undefined) ?? []).includes('nginx');
    await mustRun(h.host, 'restart', restartScript(services, h.paths.root, nginxChanged));
    return restartSummary(run, services, run.options.dryRun ? 'if changed' : nginxChanged);
  };
}

/** A restart's step line: what it restarted and reloaded, or under --dry-run what it would. */
function restartSummary(run: TaskRun, services: Services, nginx: boolean | 'if changed'): string {
  const program = services.supervisor?.name;
  const reloads = Boolean(nginx && services.nginx);
  const done = [program && `restarted ${program}`, reloads && 'reloaded nginx'];
  const planned = [program && `restart ${program}`, reloads && `reload nginx${nginx === 'if changed' ? ' if its site changed' : ''}`];
  return run.tell(done.filter(Boolean).join(', '), planned.filter(Boolean).join(', '));
}

export function healthCheck(run: TaskRun, releaseId: string) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const check = run.config.healthcheck;
    if (!check) return { skipped: 'no healthcheck configured' };
    const answer = healthyIn(await mustRun(h.host, 'health check', healthCheckScript(checkFor(check, releaseId), run.config.services)));
    return run.tell(answer, `check ${check.url}`);
  };
}

/** The `restart` task: restart the program on every host (and reload nginx). */
export async function restart(run: TaskRun): Promise<void> {
  const services = run.config.services;
  if (!services) throw new Error('restart: no services configured (set "services" in the config)');
  await run.each('restart', (h) => mustRun(h.host, 'restart', restartScript(services, h.paths.root, true)).then(() => restartSummary(run, services, true)));
}

/** The read-only service commands `status` and `check` run: supervisor's view of the program, and nginx -t. */
export function statusCommands(services: Services): { supervisor?: Shell; nginxTest?: Shell } {
  return {
    supervisor: services.supervisor && programStatusCommand(services, services.supervisor),
    nginxTest: services.nginx && (services.helper ? helperCommand(services, 'test') : nginxTestCommand(services)),
  };
}

/** Which of status's facts say something is wrong: the program not RUNNING, nginx -t failing, the health check failing. */
export function failedFacts(facts: Record<string, string>): string[] {
  const bad: Record<string, (v: string) => boolean> = {
    supervisor: (v) => !/^\S+\s+RUNNING\b/.test(v),
    nginx: (v) => !v.startsWith('config ok'),
    health: (v) => !v.startsWith('ok'),
  };
  return Object.entries(facts).filter(([k, v]) => bad[k]?.(v)).map(([k]) => k);
}

/** The `status` task: live release, supervisor's view, nginx's config check and one health check per host; exit 1 if any fails. */
export async function status(run: TaskRun): Promise<void> {
  await run.inspect();
  const services = run.config.services;
  const check = run.config.healthcheck;
  await run.each('status', async (h) => {
    const commands = services && statusCommands(services);
    // One answer is enough here: status reports the moment, it does not judge a release.
    const once = check && healthCheckScript({ ...checkFor(check, h.state.live ?? ''), timeoutSeconds: 1, successes: 1 }, services);
    const lines = script(
      commands?.supervisor ? sh`echo "@@supervisor $(${commands.supervisor} 2>&1 | head -n 1)"` : undefined,
      commands?.nginxTest ? sh`if ${commands.nginxTest} >/dev/null 2>&1; then echo "@@nginx config ok"; else echo "@@nginx config FAILS nginx -t"; fi` : undefined,
      once && sh`if out=$( ( ${once} ) 2>&1); then echo "@@health ok: \${out#@@healthy }"; else echo "@@health FAILED: $out"; fi`,
      sh`true`,
    );
    const output = (await h.host.exec(lines, { readonly: true })).stdout;
    const facts = Object.fromEntries([...output.matchAll(/^@@(\w+) (.*)$/gm)].map((m) => [m[1], m[2].trim()]));
    const failed = failedFacts(facts);
    Object.assign(h.result, { live: h.state.live, ...facts, ...(failed.length ? { failed } : {}) });
    if (!failed.length) return [`live ${h.state.live ?? '(none)'}`, ...Object.entries(facts).map(([k, v]) => `${k}: ${v}`)].join('; ');
    const marked = Object.entries(facts).map(([k, v]) => `  ${failed.includes(k) ? '✗' : '✓'} ${k}: ${v}`);
    throw new Error([`${h.host.name}: live ${h.state.live ?? '(none)'}; ${failed.join(', ')} failing:`, ...marked].join('\n'));
  });
}
