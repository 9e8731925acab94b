// Shell for the dependency environment: build envs/<key> once, then link it into the release.
import type { DependencyType } from '../config/types.js';
import { COMPLETE, envLinkTarget, layout } from '../lib/paths.js';
import { script, sh, type Shell } from '../lib/sh.js';

/** Links the (complete) environment into the staged release. */
export function linkEnvironmentScript(type: DependencyType, deployTo: string, id: string, key: string): Shell {
  const staged = layout(deployTo).staging(id);
  const [name, target] =
    type === 'node' ? ['node_modules', envLinkTarget(key, 'node_modules')] : ['.venv', envLinkTarget(key)];
  return sh`rm -rf ${`${staged}/${name}`} && ln -s ${target} ${`${staged}/${name}`}`;
}

function installCommand(type: DependencyType, deployTo: string, build: string, staged: string): Shell {
  const p = layout(deployTo);
  // Chained with &&: the caller runs this in an `if` condition, where `set -e` does not stop at a failure.
  if (type === 'node') {
    return script(
      sh`cp ${`${staged}/package.json`} ${`${staged}/package-lock.json`} ${build}/ &&`,
      sh`  cd ${build} &&`,
      sh`  npm ci --omit=dev --cache ${p.toolCache('npm')} --prefer-offline --no-audit --no-fund`,
    );
  }
  return script(
    sh`python3 -m venv ${build} &&`,
    sh`  ${`${build}/bin/pip`} install --disable-pip-version-check --cache-dir ${p.toolCache('pip')} \\`,
    sh`    -r ${`${staged}/requirements.txt`}`,
  );
}

/**
 * Installs into envs/<key> unless it is already complete; a failure leaves no environment and shows the
 * installer's last lines.
 */
export function installEnvironmentScript(type: DependencyType, deployTo: string, id: string, key: string): Shell {
  const p = layout(deployTo);
  const env = p.env(key);
  // A venv's scripts embed their absolute path, so python builds in place; node builds aside and renames.
  const build = type === 'node' ? p.envBuild(key) : env;
  return script(
    sh`set -eu`,
    sh`if [ ! -e ${`${env}/${COMPLETE}`} ]; then`,
    sh`  rm -rf ${build} ${env} && mkdir -p ${build}`,
    // The installer's output is kept in memory, not in a file: on a full disk a log file would be empty.
    sh`  if ! out=$( ( ${installCommand(type, deployTo, build, p.staging(id))} ) 2>&1 ); then`,
    sh`    rm -rf ${build}`,
    sh`    printf '%s\n' "$out" | tail -n 25 >&2`,
    sh`    exit 1`,
    sh`  fi`,
    sh`  touch ${`${build}/${COMPLETE}`}`,
    type === 'node' ? sh`  mv -T ${build} ${env}` : undefined,
    sh`fi`,
    linkEnvironmentScript(type, deployTo, id, key),
  );
}
