// The `promote:<from-environment>` task's source: exactly the artifact that environment runs now (same id, same
// bytes), refused when its hosts disagree, when it is marked bad, or when the store's copy is not what they run.
import type { ResolvedConfig } from '../config/types.js';
import type { TaskRun } from '../fleet/task-run.js';
import { UsageError } from '../lib/errors.js';
import { ArtifactRefused } from '../release/manifest.js';
import { type Artifact, readArtifactAt } from '../store/artifacts.js';
import { openStore, storeEnv } from '../store/open-store.js';
import { checkTemplates, logArtifact } from '../steps/artifact.js';

export function checkPromoteArgs(args: string[], config: ResolvedConfig): void {
  if (args.length !== 1) {
    throw new UsageError('promote needs the environment to promote from, as in `--env production promote:staging`');
  }
  if (!config.environments.includes(args[0])) {
    throw new UsageError(
      `promote:${args[0]}: no environment "${args[0]}"; environments: ${config.environments.join(', ')}`,
    );
  }
  if (args[0] === config.environment) {
    throw new UsageError(`promote:${args[0]}: promoting "${args[0]}" into itself; choose the target with --env`);
  }
}

export async function promotedArtifact(run: TaskRun): Promise<Artifact> {
  const from = run.args[0];
  if (!run.options.readEnvironment) throw new Error('promote: this run cannot read another environment');
  const source = await run.options.readEnvironment(from);
  const live = source.hosts.map((h) => ({ name: h.config.name, id: h.state.live, meta: h.state.meta }));
  const runs = live.map((h) => `${h.name} runs ${h.id ?? 'nothing'}`).join(', ');
  const ids = new Set(live.map((h) => h.id));
  if (ids.size !== 1 || live[0].id === null)
    throw new ArtifactRefused(`promote: the hosts of ${from} disagree: ${runs}`);
  const id = live[0].id;
  const bad = live.filter((h) => h.meta[id]?.status === 'bad');
  if (bad.length) {
    const reason = bad[0].meta[id].reason ? ` (${bad[0].meta[id].reason})` : '';
    throw new ArtifactRefused(`promote: release ${id} is marked bad on ${bad.map((h) => h.name).join(', ')}${reason}`);
  }
  const recorded = live.map((h) => h.meta[id]?.artifact);
  const missing = live.filter((_, i) => !recorded[i]);
  if (missing.length) {
    throw new ArtifactRefused(
      `promote: release ${id} on ${missing.map((h) => h.name).join(', ')} was not deployed from the artifact store; ` +
        `deploy ${from} with artifacts.store set, then promote`,
    );
  }
  const sums = new Set(recorded.map((a) => `${a!.key} ${a!.sha256}`));
  if (sums.size !== 1)
    throw new ArtifactRefused(`promote: the hosts of ${from} run different bytes as ${id}: ${[...sums].join('; ')}`);
  const { key, sha256 } = recorded[0]!;
  if (!source.config.artifacts) throw new ArtifactRefused(`promote: environment ${from} has no artifacts.store`);
  const store = await openStore(source.config.artifacts.store, storeEnv(source.config));
  const artifact = await readArtifactAt(store, key);
  if (artifact.manifest.id !== id || artifact.manifest.sha256 !== sha256) {
    throw new ArtifactRefused(
      `promote: ${store.description} ${key} (sha256 ${artifact.manifest.sha256}) is not what ${from} runs ` +
        `(${id}, sha256 ${sha256})`,
    );
  }
  run.log.line(`promote: ${from} runs ${id} on ${live.map((h) => h.name).join(', ')}, sha256 ${sha256.slice(0, 12)}…`);
  await checkTemplates(run, artifact);
  logArtifact(run, artifact);
  return artifact;
}
