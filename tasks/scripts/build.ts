// Shell for a prebuilt dependency environment built on a build host (artifacts.buildOn): the release tree comes
// on stdin, `npm ci` runs in it, and the tree goes back on stdout; the runtime it was built with on stderr. And
// `check`'s look at that host: node, npm, a writable TMPDIR.
import { script, sh, type Shell } from '../lib/sh.js';
import type { Verdict } from './service-checks.js';

/**
 * In a fresh folder in the host's $TMPDIR (removed on every exit; its deploy root is not touched, so a build host
 * can later become a deploy host too): stdin (a tar.gz) is unpacked, `npm ci --omit=dev` installs with the user's
 * own npm cache (its output on stderr), and the whole tree is packed to stdout as a tar.gz. stderr first says
 * `@@node <version>` and `@@platform <ostype hosttype>`, as the inspection does.
 */
export function buildOnHostScript(): Shell {
  return script(
    sh`set -euo pipefail`,
    sh`command -v npm >/dev/null || { echo "npm not found on PATH (PATH=$PATH)" >&2; exit 1; }`,
    sh`echo "@@node $(node --version)" >&2`,
    sh`echo "@@platform $OSTYPE $HOSTTYPE" >&2`,
    sh`dir=$(mktemp -d "\${TMPDIR:-/tmp}/slipway-build.XXXXXX")`,
    sh`trap 'rm -rf "$dir"' EXIT`,
    sh`tar -xzf - -C "$dir"`,
    sh`cd "$dir"`,
    sh`npm ci --omit=dev --prefer-offline --no-audit --no-fund >&2`,
    sh`tar -czf - .`,
  );
}

/** The runtime the build host reported (the key of the environment it built, as a host's inspection gives it). */
export function parseBuildRuntime(stderr: string): { node: string; platform: string } | null {
  const node = /^@@node (.+)$/m.exec(stderr)?.[1]?.trim();
  const platform = /^@@platform (.+)$/m.exec(stderr)?.[1]?.trim();
  return node && platform ? { node, platform } : null;
}

/**
 * `check` on the build host (read-only but for a folder made and removed in $TMPDIR, as the build makes one there):
 * `@@node` and `@@npm` with their versions (empty: not on PATH), `@@tmpdir <dir>` and `@@tmpdir-writable yes`.
 */
export function buildHostCheckScript(): Shell {
  return script(
    sh`echo "@@node $(node --version 2>/dev/null)"`,
    sh`echo "@@npm $(npm --version 2>/dev/null)"`,
    sh`tmp="\${TMPDIR:-/tmp}"`,
    sh`echo "@@tmpdir $tmp"`,
    sh`if dir=$(mktemp -d "$tmp/slipway-check.XXXXXX" 2>/dev/null); then`,
    sh`  rmdir "$dir"`,
    sh`  echo '@@tmpdir-writable yes'`,
    sh`fi`,
    sh`true`,
  );
}

/** Every verdict on the build host, from its check's output: the runtime the build needs, and a writable TMPDIR. */
export function buildHostVerdicts(output: string, user: string): Verdict[] {
  const value = (key: string) => new RegExp(`^@@${key} ?(.*)$`, 'm').exec(output)?.[1]?.trim() ?? '';
  const [node, npm, tmp] = [value('node'), value('npm'), value('tmpdir')];
  const missing = [node ? '' : 'node', npm ? '' : 'npm'].filter(Boolean);
  const runtime: Verdict = missing.length
    ? {
        name: 'build runtime',
        ok: false,
        detail: `${missing.join(' and ')} not found on ${user}'s PATH over SSH: the build runs npm ci there`,
        fix: `install ${missing.length === 2 ? 'them' : 'it'} on the build host (apt-get install nodejs npm)`,
      }
    : { name: 'build runtime', ok: true, detail: `node ${node}, npm ${npm}` };
  const writable = /^@@tmpdir-writable yes$/m.test(output);
  const tmpdir: Verdict = writable
    ? { name: 'TMPDIR', ok: true, detail: `${tmp} writable (the build's folder goes there, removed after)` }
    : {
        name: 'TMPDIR',
        ok: false,
        detail: `${tmp} not writable by ${user}: the build makes its folder there`,
        fix: `as root: chmod 1777 ${tmp} (or give ${user} a writable TMPDIR in its SSH sessions)`,
      };
  return [runtime, tmpdir];
}
