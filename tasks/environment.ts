// The dependency environment: built once per (lockfile, runtime, platform) into envs/<key>, marked
// complete only when the install succeeded, then linked into each release. An unchanged lockfile
// installs nothing; a changed one installs from <deployTo>/cache.
import { createHash } from 'node:crypto';
import type { ResolvedConfig } from './core/config.js';
import { layout } from './core/paths.js';
import type { Shell } from './core/sh.js';
import { script, sh } from './core/sh.js';
import type { HostRun, StepOutcome, TaskRun } from './core/fleet.js';
import { mustRun } from './core/host.js';
import type { HostState } from './hosts.js';
import type { Release } from './release.js';
import { publishScript } from './switch.js';
import { releaseMeta } from './upload.js';

export type DependencyType = ResolvedConfig['dependencies']['type'];

export function environmentKey(type: DependencyType, lockfile: string, state: HostState): string | null {
  if (type === 'none') return null;
  const runtime = type === 'node' ? state.runtime.node : state.runtime.python;
  const hash = createHash('sha256').update([type, lockfile, runtime, state.runtime.platform].join('\0')).digest('hex');
  return `${type}-${hash.slice(0, 16)}`;
}

/** Links the (complete) environment into the staged release. */
export function linkEnvironmentScript(type: DependencyType, deployTo: string, id: string, key: string): Shell {
  const staged = layout(deployTo).staging(id);
  const [name, target] = type === 'node' ? ['node_modules', `../../envs/${key}/node_modules`] : ['.venv', `../../envs/${key}`];
  return sh`rm -rf ${`${staged}/${name}`} && ln -s ${target} ${`${staged}/${name}`}`;
}

function installCommand(type: DependencyType, deployTo: string, build: string, staged: string): Shell {
  const cache = layout(deployTo).cache;
  if (type === 'node') {
    return sh`cp ${`${staged}/package.json`} ${`${staged}/package-lock.json`} ${build}/ && cd ${build} && npm ci --omit=dev --cache ${`${cache}/npm`} --prefer-offline --no-audit --no-fund`;
  }
  return sh`python3 -m venv ${build} && ${`${build}/bin/pip`} install --disable-pip-version-check --cache-dir ${`${cache}/pip`} -r ${`${staged}/requirements.txt`}`;
}

/** Installs into envs/<key> unless it is already complete; a failure leaves no environment and shows the installer's last lines. */
export function installEnvironmentScript(type: DependencyType, deployTo: string, id: string, key: string): Shell {
  const p = layout(deployTo);
  const env = p.env(key);
  // A venv's scripts embed their absolute path, so python builds in place; node builds aside and renames.
  const build = type === 'node' ? `${p.envs}/.build-${key}` : env;
  return script(
    sh`set -eu`,
    sh`if [ ! -e ${`${env}/.complete`} ]; then`,
    sh`  rm -rf ${build} ${env} && mkdir -p ${build}`,
    // The installer's output is kept in memory, not in a file: on a full disk a log file would be empty.
    sh`  if ! out=$( ( ${installCommand(type, deployTo, build, p.staging(id))} ) 2>&1 ); then`,
    sh`    rm -rf ${build}; printf '%s\n' "$out" | tail -n 25 >&2; exit 1`,
    sh`  fi`,
    sh`  touch ${`${build}/.complete`}`,
    type === 'node' ? sh`  mv -T ${build} ${env}` : undefined,
    sh`fi`,
    linkEnvironmentScript(type, deployTo, id, key),
  );
}

/** The dependencies step: installs only when no complete environment has this key, then publishes. */
export function installDependencies(run: TaskRun, release: Release) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const key = release.envKeys.get(h.host.name) ?? null;
    if (key === null) return { skipped: 'no dependencies' };
    if (h.state.envs.includes(key)) return run.tell(`reused envs/${key}, no install`, `reuse envs/${key}, no install`);
    const meta = releaseMeta(release, key);
    const command = script(installEnvironmentScript(run.config.dependencies.type, h.paths.root, release.id, key), publishScript(h.paths.root, meta));
    await mustRun(h.host, 'dependency install', command);
    h.state.meta[release.id] = meta;
    h.state.envs.push(key);
    return run.tell(`installed envs/${key}`, `install envs/${key}`);
  };
}
