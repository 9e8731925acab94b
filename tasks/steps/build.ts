// Step: build the release artifact once and publish it to the store (`build`, and a deploy with a store).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ArtifactsConfig, HostConfig, ResolvedConfig } from '../config/types.js';
import type { TaskRun } from '../fleet/task-run.js';
import { ConfigError } from '../lib/errors.js';
import { buildArchive } from '../release/archive.js';
import { ARTIFACT_COMPAT, type ArtifactManifest, type ManifestFile, manifestFiles } from '../release/manifest.js';
import { deployer } from '../release/metadata.js';
import { chooseReleaseId, environmentKey } from '../release/rules.js';
import type { HostState } from '../release/state.js';
import { renderTemplates } from '../release/templates.js';
import { type Artifact, listArtifactIds, publishArtifact } from '../store/artifacts.js';
import { artifactKeys } from '../store/keys.js';
import { openStore, storeEnv } from '../store/open-store.js';
import { buildOnHost } from './build-on-host.js';

const execFileP = promisify(execFile);

/** The config's `artifacts`, or a config error naming what to add. */
export function artifactsConfig(run: TaskRun, what: string): ArtifactsConfig {
  const artifacts = run.config.artifacts;
  if (!artifacts) {
    throw new ConfigError(
      `${what} needs an artifact store: add artifacts: { store: { type: 'dir', path: '/var/artifacts' } } ` +
        `(or type 'http', url) to the config of environment "${run.config.environment}"`,
    );
  }
  return artifacts;
}

/** Where `build` runs (its header line): on the build host of artifacts.buildOn, or here; for the selected hosts. */
export function buildRunsOn(config: ResolvedConfig, hosts: HostConfig[]): string {
  const builder = config.artifacts?.buildOn ? `${config.artifacts.buildOn.host.name} (build host)` : 'this machine';
  return `${builder}, for ${hosts.map((h) => h.name).join(', ')}`;
}

/** The deployer's runtime, as a host's inspection reports it: what a prebuilt environment is keyed by. */
async function localRuntime(): Promise<HostState['runtime']> {
  const node = await execFileP('node', ['--version']).then((r) => r.stdout.trim());
  const platform = await execFileP('bash', ['-c', 'echo "$OSTYPE $HOSTTYPE"']).then((r) => r.stdout.trim());
  return { node, python: '', platform };
}

/**
 * Builds the artifact (the archive of the ref; with artifacts.dependencies 'prebuilt' the dependency environment
 * too, installed once: here, or on the build host of artifacts.buildOn) and its manifest, checks every template
 * renders, and publishes it: latest last.
 */
export async function buildArtifact(run: TaskRun): Promise<Artifact> {
  const artifacts = artifactsConfig(run, 'build');
  const type = run.config.dependencies.type;
  // 'prebuilt' with python is refused at load (config/load.ts).
  const prebuilt = artifacts.dependencies === 'prebuilt' && type !== 'none';
  let builder = deployer();
  const store = await openStore(artifacts.store, storeEnv(run.config));
  let files: ManifestFile[] = [];
  let envKey: string | null = null;
  const archive = await buildArchive(run.config, {
    dotenv: false,
    prepare: async (tree, lockfile) => {
      if (prebuilt && lockfile !== null && artifacts.buildOn) {
        // On the build host (artifacts.buildOn); under --dry-run nothing is sent there.
        if (run.options.dryRun) run.log.line(`would build the environment on ${artifacts.buildOn.host.name}`);
        else {
          const built = await buildOnHost(run, tree);
          envKey = environmentKey(type, lockfile, { runtime: built.runtime } as HostState);
          builder = built.builder;
        }
      } else if (prebuilt && lockfile !== null) {
        await execFileP('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund'], {
          cwd: tree,
          maxBuffer: 64 * 1024 * 1024,
        }).catch((error) => {
          throw new Error(`building the prebuilt environment failed (npm ci):\n${String(error.stderr).trim()}`);
        });
        envKey = environmentKey(type, lockfile, { runtime: await localRuntime() } as HostState);
      }
      files = await manifestFiles(tree);
    },
  });
  run.onFinish(archive.dispose);
  const id = await chooseReleaseId(
    archive.commit,
    new Set(await listArtifactIds(store, run.config.application, run.config.environment)),
  );
  for (const h of run.hosts) await renderTemplates(run.config, h.config, id);
  const manifest: ArtifactManifest = {
    compat: ARTIFACT_COMPAT,
    id,
    application: run.config.application,
    environment: run.config.environment,
    ref: archive.ref,
    commit: archive.commit,
    builder,
    builtAt: new Date().toISOString(),
    sha256: archive.sha256,
    bytes: archive.bytes,
    dependencies: prebuilt ? 'prebuilt' : 'host',
    envKey,
    lockfile: archive.lockfile,
    files,
  };
  const kb = (archive.bytes / 1024).toFixed(1);
  const env = envKey ? `, environment ${envKey} inside` : '';
  const what = `(${kb} KiB, ${files.length} files${env})`;
  if (run.options.dryRun) {
    // Nothing is published: the hosts' dry run shows the fetch of the key it would have.
    run.log.line(`artifact ${id} would be published to ${store.description} ${what}`);
    return { store, key: artifactKeys(manifest.application, manifest.environment).archive(id), manifest };
  }
  const artifact = await publishArtifact(store, archive.file, manifest);
  run.log.line(`artifact ${id} published to ${store.description} ${what}`);
  return artifact;
}
