// Step: install the dependency environment (once per lockfile) and publish the staged release.
import type { HostRun, StepOutcome } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import { mustRun } from '../hosts/host.js';
import { script } from '../lib/sh.js';
import type { Release } from '../release/archive.js';
import { releaseMeta } from '../release/metadata.js';
import { installEnvironmentScript } from '../scripts/environment.js';
import { publishScript } from '../scripts/release.js';

/** The dependencies step: installs only when no complete environment has this key, then publishes. */
export function installDependencies(run: TaskRun, release: Release) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const key = release.envKeys.get(h.host.name) ?? null;
    if (key === null)
      return { skipped: release.artifact?.prebuiltEnvKey ? 'prebuilt, in the artifact' : 'no dependencies' };
    if (h.state.envs.includes(key)) return run.tell(`reused envs/${key}, no install`, `reuse envs/${key}, no install`);
    const meta = releaseMeta(release, key);
    const command = script(
      installEnvironmentScript(run.config.dependencies.type, h.paths.root, release.id, key),
      publishScript(h.paths.root, meta),
    );
    await mustRun(h.host, 'dependency install', command);
    h.state.meta[release.id] = meta;
    h.state.envs.push(key);
    return run.tell(`installed envs/${key}`, `install envs/${key}`);
  };
}
