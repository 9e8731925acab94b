// The `artifacts` task: the store's artifacts per environment folder, which one is `latest`, which environments
// run each (read from every environment's hosts); `artifacts:purge` removes those beyond artifacts.keep, never one
// that is latest or live anywhere, and refuses when an environment's hosts cannot be read.
import type { ResolvedConfig } from '../config/types.js';
import type { OtherEnvironment } from '../fleet/run-options.js';
import type { TaskRun } from '../fleet/task-run.js';
import { SlipwayError, UsageError } from '../lib/errors.js';
import { type Artifact, listArtifactIds, readArtifactAt } from '../store/artifacts.js';
import { artifactKeys } from '../store/keys.js';
import { openStore, storeEnv } from '../store/open-store.js';
import { planArtifactPurge } from '../store/purge-plan.js';
import type { ArtifactStore } from '../store/store.js';
import { artifactsConfig } from '../steps/build.js';

export function checkArtifactsArgs(args: string[], _config: ResolvedConfig): void {
  if (args.length > 1 || (args.length === 1 && args[0] !== 'purge')) {
    throw new UsageError(`artifacts takes no argument or "purge" (artifacts:purge), got "${args.join(',')}"`);
  }
}

/** Per archive key: the environments whose hosts run it now. */
async function liveEverywhere(run: TaskRun): Promise<{ runs: Map<string, Set<string>>; unread: string[] }> {
  const runs = new Map<string, Set<string>>();
  const unread: string[] = [];
  const note = (env: string, hosts: OtherEnvironment['hosts']) => {
    for (const h of hosts) {
      const key = h.state.live ? h.state.meta[h.state.live]?.artifact?.key : undefined;
      if (!key) continue;
      if (!runs.has(key)) runs.set(key, new Set());
      runs.get(key)!.add(env);
    }
  };
  await run.inspect();
  note(run.config.environment, run.hosts);
  for (const env of run.config.environments.filter((e) => e !== run.config.environment)) {
    try {
      note(env, (await run.options.readEnvironment!(env)).hosts);
    } catch (error) {
      unread.push(`${env} (${(error as Error).message.split('\n')[0]})`);
    }
  }
  return { runs, unread };
}

/** The environment folders of this application in the store. */
async function storeEnvironments(store: ArtifactStore, application: string): Promise<string[]> {
  const keys = await store.list(application);
  return [...new Set(keys.map((k) => k.split('/')[1]).filter(Boolean))].sort();
}

export async function artifacts(run: TaskRun): Promise<void> {
  const config = artifactsConfig(run, 'artifacts');
  const purge = run.args[0] === 'purge';
  const store = await openStore(config.store, storeEnv(run.config));
  const { runs, unread } = await liveEverywhere(run);
  if (unread.length) {
    const message = `could not read the hosts of ${unread.join(', ')}`;
    if (purge) throw new SlipwayError(`artifacts:purge: ${message}: what runs there is unknown, nothing removed`);
    run.log.warn(`${message}: "live" below leaves them out`);
  }
  const app = run.config.application;
  run.log.line(`artifacts of ${app} in ${store.description}:`);
  for (const env of await storeEnvironments(store, app)) {
    const keys = artifactKeys(app, env);
    const ids = await listArtifactIds(store, app, env);
    const latest = (await store.getText(keys.latest))?.trim();
    const liveIds = new Set(ids.filter((id) => runs.has(keys.archive(id))));
    const plan = purge ? planArtifactPurge(ids, config.keep, latest, liveIds) : { kept: ids, removed: [] };
    run.log.line(`  ${env}/ (${ids.length} artifact${ids.length === 1 ? '' : 's'}, latest ${latest ?? 'none'})`);
    for (const id of ids) {
      const artifact: Artifact | undefined = await readArtifactAt(store, keys.archive(id)).catch(() => undefined);
      const m = artifact?.manifest;
      const what = m ? `${m.commit.slice(0, 7)} ${m.ref} ${(m.bytes / 1024).toFixed(1)} KiB by ${m.builder}` : '?';
      const marks = [
        id === latest ? 'latest' : '',
        runs.has(keys.archive(id)) ? `live: ${[...runs.get(keys.archive(id))!].sort().join(', ')}` : '',
        plan.removed.includes(id) ? (run.options.dryRun ? 'would be removed' : 'removed') : '',
      ].filter(Boolean);
      run.log.line(`    ${id}  ${what}${marks.length ? `  (${marks.join('; ')})` : ''}`);
    }
    if (run.options.dryRun) continue;
    // The manifest first: without it the artifact is no longer listed or deployable, then its archive goes.
    for (const id of plan.removed) {
      await store.remove(keys.manifest(id));
      await store.remove(keys.archive(id));
    }
  }
}
