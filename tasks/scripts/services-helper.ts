// nginx and supervisor through the root-owned helper (server/slipway-services): the deploy user's
// one sudo rule runs it with an application name, a subcommand and at most a release id; the
// helper's own config fixes every path, command, program name and user it acts on.
import type { Services } from '../config/types.js';
import { raw, script, sh, type Shell } from '../lib/sh.js';

export type HelperSubcommand =
  | 'install'
  | 'restore'
  | 'commit'
  | 'restart'
  | 'reload'
  | 'status'
  | 'test'
  | 'pid'
  | 'tail'
  // blue-green: one slot's program started, stopped, its status and its stderr.
  | 'slot-start'
  | 'slot-stop'
  | 'slot-status'
  | 'slot-tail';

/** `/usr/local/sbin/slipway-services <application> <subcommand> [release id]`: what the sudo rule is asked about. */
function helperArguments(services: Services, subcommand: HelperSubcommand, ...args: string[]): Shell {
  const helper = services.helper;
  if (!helper) throw new Error('helperCommand: services.helper is not set');
  const release = args.length ? sh` ${args}` : raw('');
  return sh`${helper.command} ${helper.application} ${raw(subcommand)}${release}`;
}

/** `sudo -n /usr/local/sbin/slipway-services <application> <subcommand> [release id]`. */
export function helperCommand(services: Services, subcommand: HelperSubcommand, ...args: string[]): Shell {
  return sh`${raw(services.sudo ? `${services.sudo} ` : '')}${helperArguments(services, subcommand, ...args)}`;
}

/**
 * Every helper call a deploy of `releaseId` makes, without the sudo prefix: what `check` asks sudo
 * about (`sudo -n -l <command>`). The one sudo rule allows them all, or none.
 */
export function helperPrivilegedCommands(services: Services, releaseId: string): Shell[] {
  // The slot calls are not asked about: they are in the same one rule as these (helperSubcommands).
  return helperSubcommands(services, false, { slots: false }).map((c) =>
    helperArguments(services, c, ...exampleArguments(c, releaseId)),
  );
}

/** The arguments a subcommand is called with, for asking sudo about it. */
function exampleArguments(subcommand: HelperSubcommand, releaseId: string): string[] {
  return subcommand === 'install' ? [releaseId] : [];
}

/** Subcommands that take arguments (a release id, a slot), which the helper checks: `*` in the sudo rule. */
export function takesArguments(subcommand: string): boolean {
  return subcommand === 'install' || subcommand.startsWith('slot-');
}

/**
 * The helper's subcommands a deploy calls (install first), and with `readOnly` also `test`, which
 * `status` and `check` call: what setup's sudo rule allows, each with exactly these arguments. `slots`: also
 * blue-green's slot calls, in the rule whatever the strategy, so that switching to blue-green needs no new rule
 * (the helper checks a slot's section as it checks install's).
 */
export function helperSubcommands(
  services: Services,
  readOnly: boolean,
  { slots = true }: { slots?: boolean } = {},
): HelperSubcommand[] {
  return [
    'install',
    'restore',
    'commit',
    // status and tail: the health check's view of the program, and its stderr when it fails.
    ...(services.supervisor ? (['restart', 'pid', 'status', 'tail'] as const) : []),
    ...(services.supervisor && slots ? (['slot-start', 'slot-stop', 'slot-status', 'slot-tail'] as const) : []),
    ...(services.nginx ? (['reload'] as const) : []),
    ...(services.nginx && readOnly ? (['test'] as const) : []),
  ];
}

/**
 * The helper installs and validates; its `@@changed nginx` line sets `$nginx_changed` for
 * restartThroughHelper('shell').
 */
export function installThroughHelper(services: Services, releaseId: string): Shell {
  return script(
    sh`if ! installed=$(${helperCommand(services, 'install', releaseId)}); then`,
    sh`  exit 1`,
    sh`fi`,
    sh`[ -z "$installed" ] || printf '%s\\n' "$installed"`,
    sh`case "$installed" in *'@@changed nginx'*) nginx_changed=1;; *) nginx_changed=;; esac`,
  );
}

export function restoreThroughHelper(services: Services): Shell {
  return helperCommand(services, 'restore');
}

/** `explain`: lines run when the restart fails, with the helper's output in `$out`, before the script exits 1. */
export function restartThroughHelper(services: Services, nginxChanged: boolean | 'shell', explain?: Shell): Shell {
  const reload = helperCommand(services, 'reload');
  const restart = helperCommand(services, 'restart');
  return script(
    sh`set -e`,
    services.supervisor && explain
      ? script(sh`if ! out=$(${restart} 2>&1); then`, sh`  printf '%s\\n' "$out" >&2`, explain, sh`  exit 1`, sh`fi`)
      : undefined,
    services.supervisor && !explain ? restart : undefined,
    services.nginx && nginxChanged === 'shell'
      ? script(sh`if [ -n "\${nginx_changed:-}" ]; then`, sh`  ${reload}`, sh`fi`)
      : undefined,
    services.nginx && nginxChanged === true ? reload : undefined,
    helperCommand(services, 'commit'),
  );
}
