// The helper's part of `setup` (scripts/setup.ts runs it as root, inside its script): the root-owned
// install helper (server/slipway-services, its text on stdin, checksummed), its config
// /etc/slipway/<application>.conf, the include dirs, and the deploy user's one sudo rule, checked by
// visudo before it is installed. Also the config's and the rule's text, which README shows.
import path from 'node:path';
import type { SetupConfig } from '../config/types.js';
import { script, sh, type Shell } from '../lib/sh.js';
import { takesArguments } from './services-helper.js';

export interface HelperSetup {
  /** Where the helper is installed (services.helper). */
  path: string;
  /** The helper's text arrives on stdin: its size and sha256. */
  bytes: number;
  sha256: string;
  /** /etc/slipway/<application>.conf and its text (helperConfig). */
  configFile: string;
  config: string;
  /** /etc/sudoers.d/slipway-<application> and its text (helperSudoers). */
  sudoersFile: string;
  sudoers: string;
  /** Root-owned folders: the nginx and supervisor include dirs, the program's log dir. */
  dirs: string[];
  /** Programs the helper's config names (nginx, supervisorctl): each must be installed. */
  programs: string[];
}

/** Reads the helper's text from stdin into a temp folder, before anything else could read stdin. */
export function receiveHelper(helper: HelperSetup): Shell {
  return script(
    sh`tmp=$(mktemp -d)`,
    sh`trap 'rm -rf "$tmp"' EXIT`,
    sh`head -c ${helper.bytes} > "$tmp/helper"`,
    sh`if ! echo ${`${helper.sha256}  `}"$tmp/helper" | sha256sum -c --status -; then`,
    sh`  refuse 'the helper arrived incomplete (sha256 differs)'`,
    sh`fi`,
  );
}

export function helperScript(helper: HelperSetup): Shell {
  const programs = helper.programs.map((program) => {
    const name = path.posix.basename(program);
    const fix = `apt-get install ${name === 'supervisorctl' ? 'supervisor' : name}, or set its path in setup.helper`;
    return script(sh`if ! command -v ${program} >/dev/null; then`, sh`  missing ${program} ${fix}`, sh`fi`);
  });
  return script(
    sh`make_dir ${path.posix.dirname(helper.path)}`,
    sh`put_file "$tmp/helper" ${helper.path} 755 helper`,
    sh`ensure_dir ${path.posix.dirname(helper.configFile)} root root 755 folder`,
    sh`printf '%s' ${helper.config} > "$tmp/config"`,
    sh`put_file "$tmp/config" ${helper.configFile} 644 'helper config'`,
    ...helper.dirs.map((d) => sh`make_dir ${d}`),
    ...programs,
    sh`if ! command -v sudo >/dev/null || ! command -v visudo >/dev/null; then`,
    sh`  missing sudo 'apt-get install sudo (then run setup again: it writes the sudo rule)'`,
    sh`else`,
    sh`  make_dir ${path.posix.dirname(helper.sudoersFile)}`,
    sh`  printf '%s' ${helper.sudoers} > "$tmp/sudoers"`,
    sh`  if ! out=$(visudo -c -q -f "$tmp/sudoers" 2>&1); then`,
    sh`    refuse "visudo rejects the sudo rule: $out"`,
    sh`  fi`,
    sh`  put_file "$tmp/sudoers" ${helper.sudoersFile} 440 'sudo rule'`,
    sh`fi`,
  );
}

/** The helper's config, /etc/slipway/<application>.conf (server/slipway-services reads it). */
export function helperConfig(input: {
  deployUser: string;
  deployTo: string;
  program?: string;
  runAs: string;
  nginx: boolean;
  supervisor: boolean;
  helper: SetupConfig['helper'];
}): string {
  const h = input.helper;
  const lines = [
    '# Written by slipway setup: what the install helper may act on, and nothing else.',
    `deploy_user=${input.deployUser}`,
    `deploy_to=${input.deployTo}`,
    ...(input.supervisor
      ? [
          `program=${input.program}`,
          `run_as=${input.runAs}`,
          `program_file=${h.programFile}`,
          `supervisorctl=${h.supervisorctl}`,
        ]
      : []),
    ...(input.nginx
      ? [`site=${h.site}`, `enabled=${h.enabled}`, `nginx_test=${h.nginxTest}`, `nginx_reload=${h.nginxReload}`]
      : []),
    `allowed_paths=${h.allowedPaths.join(' ')}`,
    `state_dir=${h.stateDir}`,
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * The deploy user's one sudo rule: the helper, for this application, with exactly the arguments a deploy
 * (and `status` / `check`) passes it; `install` takes a release id and the slot subcommands a slot (and an id),
 * which the helper checks.
 */
export function helperSudoers(user: string, helper: string, application: string, subcommands: string[]): string {
  const commands = subcommands.map((c) => `${helper} ${application} ${c}${takesArguments(c) ? ' *' : ''}`);
  return (
    `# Written by slipway setup: ${user} may run the install helper for ${application}, and nothing else, as root.\n` +
    `${user} ALL=(root) NOPASSWD: ${commands.join(', ')}\n`
  );
}
