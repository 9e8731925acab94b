// Step: pack the release once locally (git archive + rendered templates), before any host is touched.
import type { TaskRun } from '../fleet/task-run.js';
import { buildArchive, type ReleaseArchive } from '../release/archive.js';
import { newReleaseId } from '../release/rules.js';
import { renderTemplates } from '../release/templates.js';

/** Builds the archive and renders every template once as a check: all before any host changes. */
export async function packRelease(run: TaskRun): Promise<ReleaseArchive> {
  const archive = await buildArchive(run.config);
  run.onFinish(archive.dispose);
  try {
    const provisional = newReleaseId(new Date(), archive.commit);
    for (const h of run.hosts) await renderTemplates(run.config, h.config, provisional);
  } catch (error) {
    archive.dispose();
    throw error;
  }
  if (archive.uncommitted.length) {
    const files = archive.uncommitted.slice(0, 5).join(', ') + (archive.uncommitted.length > 5 ? ', …' : '');
    run.log.warn(
      `${archive.uncommitted.length} file(s) with uncommitted changes (${files}): the release is built from ` +
        `commit ${archive.commit.slice(0, 7)} (ref ${archive.ref}), not from the working tree`,
    );
  }
  const kb = (archive.bytes / 1024).toFixed(1);
  run.log.line(`release: ${archive.commit.slice(0, 7)} from ref ${archive.ref} (${kb} KiB archive)`);
  return archive;
}
