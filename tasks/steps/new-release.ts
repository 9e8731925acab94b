// Step: the release id and what this release ships to each host.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { TaskRun } from '../fleet/task-run.js';
import type { Release, ReleaseArchive } from '../release/archive.js';
import { ArtifactRefused } from '../release/manifest.js';
import { chooseReleaseId, environmentKey } from '../release/rules.js';
import { type RenderedFile, renderTemplates } from '../release/templates.js';
import type { Artifact } from '../store/artifacts.js';

/**
 * With every host locked and read: the id (new on every host; an artifact's own id), rendered templates,
 * environment keys.
 */
export async function newRelease(run: TaskRun, from: ReleaseArchive | Artifact): Promise<Release> {
  const taken = new Set(run.hosts.flatMap((h) => h.state.releases));
  const artifact = 'manifest' in from ? from : undefined;
  const archive = artifact ? artifactArchive(artifact) : (from as ReleaseArchive);
  if (artifact && taken.has(artifact.manifest.id)) {
    const id = artifact.manifest.id;
    const on = run.hosts.filter((h) => h.state.releases.includes(id)).map((h) => h.host.name);
    throw new ArtifactRefused(`release ${id} is already on ${on.join(', ')}: \`rollback:${id}\` makes it live there`);
  }
  const id = artifact ? artifact.manifest.id : await chooseReleaseId(archive.commit, taken);
  const prebuilt = artifact?.manifest.dependencies === 'prebuilt' ? artifact.manifest.envKey : null;
  const files = new Map<string, RenderedFile[]>();
  const envKeys = new Map<string, string | null>();
  for (const h of run.hosts) {
    files.set(h.host.name, await renderTemplates(run.config, h.config, id));
    const key =
      archive.lockfile === null ? null : environmentKey(run.config.dependencies.type, archive.lockfile, h.state);
    // A host of the platform the artifact's environment was built for uses it as it is: nothing to install.
    envKeys.set(h.host.name, prebuilt && key === prebuilt ? null : key);
    h.report.release = id;
  }
  run.log.line(`release id: ${id}`);
  const release: Release = { id, archive, files, envKeys, deployedAt: new Date().toISOString() };
  if (artifact) {
    const dotenv = path.join(run.config.projectRoot, `.env.${run.config.environment}`);
    release.artifact = {
      key: artifact.key,
      source: await artifact.store.sourceForHost(artifact.key),
      prebuiltEnvKey: prebuilt,
      ...(existsSync(dotenv) ? { dotenv: readFileSync(dotenv, 'utf8') } : {}),
    };
  }
  return release;
}

/** An artifact as the release's archive: its checksum, size and lockfile; no local file (the hosts fetch it). */
function artifactArchive({ manifest }: Artifact): ReleaseArchive {
  const { ref, commit, sha256, bytes, lockfile } = manifest;
  return { ref, commit, file: '', sha256, bytes, lockfile, uncommitted: [], dispose: () => undefined };
}
