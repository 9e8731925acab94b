// What `setup` runs on a fresh host, as root, in one round trip: the deploy user and its keys, the deploy
// root (marked as slipway's), the shared items, and with services.helper the root-owned helper, its
// config and its sudo rule; then whether the runtime the dependencies need is there. Each item is
// compared first and only changed when it differs, so a second run changes nothing. Inside the deploy
// user's own folders (its home, the deploy root) the work runs as that user: root never follows a link
// the deploy user could have planted there.
import path from 'node:path';
import { layout, ROOT_MARK } from '../lib/paths.js';
import { ROOT_MARK_TEXT } from '../lock/remote-lock.js';
import { raw, script, sh, type Shell } from '../lib/sh.js';
import { type HelperSetup, helperScript, receiveHelper } from './helper-setup.js';

export interface SetupSpec {
  user: string;
  deployTo: string;
  /** Public key lines for the deploy user's authorized_keys. */
  authorizedKeys: string[];
  /** Checked paths inside shared/ (paths.ts sharedItems). */
  shared: { dirs: string[]; files: string[] };
  runtime: 'node' | 'python' | 'none';
  /** The user the program runs as (runAs), when it is not the deploy user: it must exist. */
  runAs?: string;
  helper?: HelperSetup;
}

/** A user name useradd takes and a sudoers line cannot be bent by. */
export const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

/** Key lines as they go into authorized_keys: "type base64 [comment]", one line, no options. */
export const PUBLIC_KEY =
  /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-\S+@openssh\.com) [A-Za-z0-9+/]+=*( [^\n\r]*)?$/;

/** How a key is named in setup's output: its type, the end of its blob and its comment. */
export function keyLabel(key: string): string {
  const [type, blob, ...comment] = key.split(' ');
  return `${type} …${blob.replace(/=+$/, '').slice(-8)}${comment.length ? ` ${comment.join(' ')}` : ''}`;
}

/** How each part reports: a change, an item as it should be, what is missing (and its fix), a refusal. */
const REPORTING = [
  raw(`changed() { printf '@@changed %s\\n' "$*"; }`),
  raw(`same() { printf '@@ok %s\\n' "$*"; }`),
  raw(`missing() { printf '@@missing %s\\t%s\\n' "$1" "$2"; }`),
  raw(`refuse() { printf '@@refused %s\\n' "$*"; exit 1; }`),
];

/** A folder or a root-owned file made to be exactly so (root's part only), reporting what it did. */
export const FOLDERS_AND_FILES = [
  ...REPORTING,
  // ensure_dir PATH OWNER GROUP MODE LABEL: a real folder (never a link) with that owner and mode.
  raw(`ensure_dir() {
  if [ -L "$1" ] || { [ -e "$1" ] && [ ! -d "$1" ]; }; then refuse "$5 $1 is not a folder"; fi
  if [ ! -d "$1" ]; then
    install -d -o "$2" -g "$3" -m "$4" -- "$1"
    changed "$5 $1 created"
  elif [ "$(stat -c '%U:%G %a' -- "$1")" != "$2:$3 $4" ]; then
    chown -h -- "$2:$3" "$1"
    chmod -- "$4" "$1"
    changed "$5 $1 now $2:$3, mode $4"
  else
    same "$5 $1"
  fi
}`),
  // make_dir PATH: a system folder (an include dir, /usr/local/sbin): made root's if missing, else left as it is.
  raw(`make_dir() {
  if [ -d "$1" ]; then same "folder $1"; else install -d -o root -g root -m 755 -- "$1"; changed "folder $1 created"; fi
}`),
  // put_file SOURCE TARGET MODE LABEL: root-owned, replaced by rename (never written through a link).
  raw(`put_file() {
  if [ ! -L "$2" ] && [ -f "$2" ] && cmp -s -- "$1" "$2" && [ "$(stat -c '%U:%G %a' -- "$2")" = "root:root $3" ]; then
    same "$4 $2"
    return
  fi
  [ -e "$2" ] && what=updated || what=installed
  install -o root -g root -m "$3" -- "$1" "$2.slipway-new"
  mv -f -- "$2.slipway-new" "$2"
  changed "$4 $2 $what"
}`),
];

/** The part run as the deploy user: its keys, the deploy root's mark, the shared items. */
export function deployUserScript(spec: SetupSpec): Shell {
  const p = layout(spec.deployTo);
  const sharedDirs = [
    ...new Set([
      ...spec.shared.dirs,
      ...spec.shared.files.flatMap((f) => {
        const parents: string[] = [];
        for (let d = path.posix.dirname(f); d !== '.'; d = path.posix.dirname(d)) parents.unshift(d);
        return parents;
      }),
    ]),
  ].sort();
  return script(
    sh`set -eu`,
    sh`umask 022`,
    ...REPORTING,
    sh`HOME=$(getent passwd "$(id -un)" | cut -d: -f6)`,
    sh`cd -- "$HOME"`,
    sh`if [ ! -d .ssh ]; then`,
    sh`  mkdir -m 700 .ssh`,
    sh`  changed "ssh folder $HOME/.ssh created"`,
    sh`fi`,
    sh`if [ ! -e .ssh/authorized_keys ]; then`,
    sh`  (umask 077 && : > .ssh/authorized_keys)`,
    sh`fi`,
    // A last line without its newline would run into the key appended after it.
    sh`if [ -s .ssh/authorized_keys ] && [ -n "$(tail -c 1 .ssh/authorized_keys)" ]; then`,
    sh`  echo >> .ssh/authorized_keys`,
    sh`fi`,
    ...spec.authorizedKeys.map((key) =>
      script(
        // The key itself (its base64 blob), whatever comment or options its line has.
        sh`if grep -qF -- ${key.split(' ')[1]} .ssh/authorized_keys; then`,
        sh`  same ${`authorized key ${keyLabel(key)}`}`,
        sh`else`,
        sh`  printf '%s\\n' ${key} >> .ssh/authorized_keys`,
        sh`  changed ${`authorized key ${keyLabel(key)} added`}`,
        sh`fi`,
      ),
    ),
    sh`if [ -e ${p.rootMark} ]; then`,
    sh`  same ${`deploy root mark ${p.rootMark}`}`,
    sh`else`,
    sh`  printf '%s\\n' ${ROOT_MARK_TEXT} > ${p.rootMark}`,
    sh`  changed ${`deploy root mark ${p.rootMark} written`}`,
    sh`fi`,
    ...[p.shared, ...sharedDirs.map((d) => p.sharedItem(d))].map((dir) =>
      script(
        sh`if [ -L ${dir} ] || { [ -e ${dir} ] && [ ! -d ${dir} ]; }; then`,
        sh`  refuse ${`shared dir ${dir} is not a folder`}`,
        sh`elif [ -d ${dir} ]; then`,
        sh`  same ${`shared dir ${dir}`}`,
        sh`else`,
        sh`  mkdir ${dir}`,
        sh`  changed ${`shared dir ${dir} created`}`,
        sh`fi`,
      ),
    ),
    // Created empty and private (a shared file usually holds secrets), as the upload does.
    ...spec.shared.files.map((f) => {
      const file = p.sharedItem(f);
      return script(
        sh`if [ -e ${file} ] || [ -L ${file} ]; then`,
        sh`  same ${`shared file ${file}`}`,
        sh`else`,
        sh`  (umask 077 && : > ${file})`,
        sh`  changed ${`shared file ${file} created empty (0600)`}`,
        sh`fi`,
      );
    }),
  );
}

/** What is missing for the dependencies, and how to get it (Debian's packages). */
function runtimeProbe(runtime: SetupSpec['runtime']): Shell {
  if (runtime === 'node')
    return script(
      sh`if command -v node >/dev/null && command -v npm >/dev/null; then`,
      sh`  same "runtime node $(node --version), npm $(npm --version)"`,
      sh`else`,
      sh`  missing 'node and npm (dependencies: node)' 'apt-get install nodejs npm'`,
      sh`fi`,
    );
  if (runtime === 'python')
    return script(
      sh`if command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null; then`,
      sh`  same "runtime $(python3 --version 2>&1) with venv"`,
      sh`else`,
      sh`  missing 'python3 with venv (dependencies: python)' 'apt-get install python3 python3-venv'`,
      sh`fi`,
    );
  return sh`true`;
}

/**
 * The whole setup of one host, as root. Prints `@@changed …` / `@@ok …` per item, `@@missing <what>\t<fix>`
 * for what it cannot install itself, and `@@refused …` (exit 1) where it will not go on.
 */
export function setupScript(spec: SetupSpec): Shell {
  const p = layout(spec.deployTo);
  const user = spec.user;
  const notDeployRoot =
    `deployTo ${p.root} is not empty and has no ${ROOT_MARK} mark: not a slipway deploy root; ` +
    'point deployTo at a new or empty folder';
  return script(
    sh`set -eu`,
    sh`umask 022`,
    ...FOLDERS_AND_FILES,
    spec.helper ? receiveHelper(spec.helper) : undefined,
    sh`if id -u -- ${user} >/dev/null 2>&1; then`,
    sh`  same ${`user ${user}`}`,
    sh`else`,
    // Its own group unless one of that name exists; "*": no password, yet not a locked account (which
    // sshd without PAM refuses even for keys).
    sh`  if getent group ${user} >/dev/null; then group_opt=(-g ${user}); else group_opt=(--user-group); fi`,
    sh`  useradd --create-home --shell /bin/bash "\${group_opt[@]}" --password '*' ${user}`,
    sh`  changed ${`user ${user} created`}`,
    sh`fi`,
    sh`group=$(id -gn -- ${user})`,
    spec.runAs
      ? script(
          sh`if ! id -u -- ${spec.runAs} >/dev/null 2>&1; then`,
          sh`  missing ${`user ${spec.runAs} (runAs)`} ${`useradd --system ${spec.runAs}, or another runAs`}`,
          sh`fi`,
        )
      : undefined,
    // The deploy root: slipway's own (marked), or a folder it may claim (missing, empty, an older slipway's).
    sh`if [ ! -e ${p.rootMark} ] && [ -e ${p.root} ] && [ -n "$(ls -A -- ${p.root} 2>/dev/null)" ] &&`,
    sh`  ! { [ -d ${p.releases} ] && [ -f ${p.revisions} ]; }; then`,
    sh`  refuse ${notDeployRoot}`,
    sh`fi`,
    sh`if [ -L ${p.root} ] || { [ -e ${p.root} ] && [ ! -d ${p.root} ]; }; then`,
    sh`  refuse ${`deployTo ${p.root} is not a folder`}`,
    sh`elif [ ! -d ${p.root} ]; then`,
    sh`  install -d -o ${user} -g "$group" -m 755 -- ${p.root}`,
    sh`  changed ${`deploy root ${p.root} created`}`,
    sh`elif [ "$(stat -c %U -- ${p.root})" != ${user} ]; then`,
    sh`  chown -h -- ${user}:"$group" ${p.root}`,
    sh`  changed ${`deploy root ${p.root} now owned by ${user}`}`,
    sh`else`,
    sh`  same ${`deploy root ${p.root}`}`,
    sh`fi`,
    sh`runuser -u ${user} -- bash -c ${deployUserScript(spec).text} </dev/null`,
    spec.helper ? helperScript(spec.helper) : undefined,
    runtimeProbe(spec.runtime),
  );
}

/** Runs a root script as `user`: directly as root, otherwise through passwordless sudo (stdin passes through). */
export function asAdmin(command: Shell, user: string): Shell {
  if (user === 'root') return command;
  const refused = `${user} cannot sudo without a password: set setup.user to root, or give ${user} NOPASSWD sudo`;
  return script(
    sh`if ! sudo -n true 2>/dev/null; then`,
    sh`  printf '@@refused %s\\n' ${refused}`,
    sh`  exit 1`,
    sh`fi`,
    sh`exec sudo -n bash -c ${command.text}`,
  );
}

export interface SetupOutcome {
  changed: string[];
  unchanged: string[];
  missing: Array<{ what: string; fix: string }>;
  refused?: string;
}

export function parseSetupOutput(output: string): SetupOutcome {
  const outcome: SetupOutcome = { changed: [], unchanged: [], missing: [] };
  for (const line of output.split('\n')) {
    const match = /^@@(changed|ok|missing|refused) (.*)$/.exec(line);
    if (!match) continue;
    const [, kind, text] = match;
    if (kind === 'changed') outcome.changed.push(text);
    else if (kind === 'ok') outcome.unchanged.push(text);
    else if (kind === 'refused') outcome.refused = text;
    else {
      const [what, fix] = text.split('\t');
      outcome.missing.push({ what, fix: fix ?? '' });
    }
  }
  return outcome;
}
