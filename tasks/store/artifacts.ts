// Artifacts in a store: publishing one (archive, manifest, then `latest` last) and reading one back by id or
// `latest`, its manifest checked (compat level) before anything else happens.
import { isReleaseId } from '../release/rules.js';
import { type ArtifactManifest, ArtifactRefused, parseManifest } from '../release/manifest.js';
import { artifactKeys } from './keys.js';
import type { ArtifactStore } from './store.js';

export interface Artifact {
  store: ArtifactStore;
  /** The archive's key. */
  key: string;
  manifest: ArtifactManifest;
}

/** Uploads the archive, then its manifest, then points `latest` at it: a half-published artifact is never latest. */
export async function publishArtifact(
  store: ArtifactStore,
  archiveFile: string,
  manifest: ArtifactManifest,
): Promise<Artifact> {
  const keys = artifactKeys(manifest.application, manifest.environment);
  await store.putFile(keys.archive(manifest.id), archiveFile);
  await store.putText(keys.manifest(manifest.id), `${JSON.stringify(manifest, null, 1)}\n`);
  await store.putText(keys.latest, `${manifest.id}\n`);
  return { store, key: keys.archive(manifest.id), manifest };
}

/** The artifact `id` (or `latest`) of this application and environment; refused unless this slipway can deploy it. */
export async function readArtifact(
  store: ArtifactStore,
  application: string,
  environment: string,
  which: string,
): Promise<Artifact> {
  const keys = artifactKeys(application, environment);
  let id = which;
  if (which === 'latest') {
    const latest = (await store.getText(keys.latest))?.trim();
    if (!latest) throw new ArtifactRefused(`no artifact in ${store.description} for ${keys.dir}: run \`build\` first`);
    id = latest;
  }
  if (!isReleaseId(id))
    throw new ArtifactRefused(
      `bad artifact id "${which}": expected "latest" or an id like 2024.01.01-00.00.00-abc1234`,
    );
  const text = await store.getText(keys.manifest(id));
  if (text === undefined) {
    const ids = await listArtifactIds(store, application, environment);
    throw new ArtifactRefused(
      `no artifact ${id} in ${store.description} under ${keys.dir}; artifacts: ${ids.join(', ') || '(none)'}`,
    );
  }
  const manifest = parseManifest(text, keys.manifest(id));
  if (manifest.id !== id) throw new ArtifactRefused(`artifact manifest ${keys.manifest(id)} names id ${manifest.id}`);
  return { store, key: keys.archive(id), manifest };
}

/** The artifact whose archive is at key (as a release's metadata records it), its manifest checked. */
export async function readArtifactAt(store: ArtifactStore, key: string): Promise<Artifact> {
  const manifestKey = key.replace(/\.tar\.gz$/, '.json');
  const text = manifestKey === key ? undefined : await store.getText(manifestKey);
  if (text === undefined) throw new ArtifactRefused(`no artifact manifest ${manifestKey} in ${store.description}`);
  return { store, key, manifest: parseManifest(text, manifestKey) };
}

/** The ids of an environment's complete artifacts (archive and manifest both there), oldest first. */
export async function listArtifactIds(store: ArtifactStore, application: string, environment: string) {
  const keys = artifactKeys(application, environment);
  const all = new Set(await store.list(keys.dir));
  return [...all]
    .filter((k) => k.endsWith('.json'))
    .map((k) => k.slice(keys.dir.length + 1, -'.json'.length))
    .filter((id) => isReleaseId(id) && all.has(keys.archive(id)))
    .sort();
}
