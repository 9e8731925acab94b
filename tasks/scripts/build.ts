// Shell for a prebuilt dependency environment built on a build host (artifacts.buildOn): the release tree comes
// on stdin, `npm ci` runs in it, and the tree goes back on stdout; the runtime it was built with on stderr.
import { script, sh, type Shell } from '../lib/sh.js';

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
