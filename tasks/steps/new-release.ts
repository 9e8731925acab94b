// Step: the release id and what this release ships to each host.
import type { TaskRun } from '../fleet/task-run.js';
import type { Release, ReleaseArchive } from '../release/archive.js';
import { chooseReleaseId, environmentKey } from '../release/rules.js';
import { type RenderedFile, renderTemplates } from '../release/templates.js';

/** With every host locked and read: the id (new on every host), rendered templates, environment keys. */
export async function newRelease(run: TaskRun, archive: ReleaseArchive): Promise<Release> {
  const taken = new Set(run.hosts.flatMap((h) => h.state.releases));
  const id = await chooseReleaseId(archive.commit, taken);
  const files = new Map<string, RenderedFile[]>();
  const envKeys = new Map<string, string | null>();
  for (const h of run.hosts) {
    files.set(h.host.name, await renderTemplates(run.config, h.config, id));
    envKeys.set(
      h.host.name,
      archive.lockfile === null ? null : environmentKey(run.config.dependencies.type, archive.lockfile, h.state),
    );
    h.report.release = id;
  }
  run.log.line(`release id: ${id}`);
  return { id, archive, files, envKeys, deployedAt: new Date().toISOString() };
}
