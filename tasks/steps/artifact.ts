// Step: the artifact a deploy ships, before any host is touched: `--artifact <id|latest>` read from the store,
// or, with a store configured, one built and published now; none without a store (the deploy uploads its archive).
import type { TaskRun } from '../fleet/task-run.js';
import { UsageError } from '../lib/errors.js';
import { renderTemplates } from '../release/templates.js';
import { type Artifact, readArtifact } from '../store/artifacts.js';
import { openStore, storeEnv } from '../store/open-store.js';
import { buildArtifact } from './build.js';

export async function artifactToDeploy(run: TaskRun): Promise<Artifact | undefined> {
  const which = run.options.artifact;
  const artifacts = run.config.artifacts;
  if (!artifacts) {
    if (which)
      throw new UsageError(`--artifact needs artifacts.store in the config (environment "${run.config.environment}")`);
    return undefined;
  }
  if (!which) return buildArtifact(run);
  const store = await openStore(artifacts.store, storeEnv(run.config));
  const artifact = await readArtifact(store, run.config.application, run.config.environment, which);
  await checkTemplates(run, artifact);
  logArtifact(run, artifact);
  return artifact;
}

/** Every template renders for the artifact's id on every host: checked before any host changes. */
export async function checkTemplates(run: TaskRun, artifact: Artifact): Promise<void> {
  for (const h of run.hosts) await renderTemplates(run.config, h.config, artifact.manifest.id);
}

export function logArtifact(run: TaskRun, { store, key, manifest }: Artifact): void {
  const kb = (manifest.bytes / 1024).toFixed(1);
  run.log.line(
    `artifact ${manifest.id}: ${manifest.commit.slice(0, 7)} from ref ${manifest.ref}, built by ${manifest.builder} ` +
      `at ${manifest.builtAt} (${kb} KiB, ${store.description} ${key})`,
  );
}
