// Step: ship the release archive to each host in one round trip (staged under tmp/, not yet a release); the
// staging round trip is shared with the fetch step (steps/fetch.ts), where the host gets the archive from the store.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { HostRun, StepOutcome } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import { CommandFailed } from '../hosts/host.js';
import { type Shell, script, sh } from '../lib/sh.js';
import type { Release } from '../release/archive.js';
import { deltaBases } from '../release/delta.js';
import type { ManifestFile } from '../release/manifest.js';
import {
  baseManifest,
  buildDelta,
  type DeltaArchive,
  type TreeManifest,
  treeManifest,
} from '../release/delta-archive.js';
import { releaseMeta } from '../release/metadata.js';
import { linkEnvironmentScript } from '../scripts/environment.js';
import { NGINX_REJECTED, nginxCheckScript } from '../scripts/nginx-check.js';
import { DELTA_REFUSED, type DeltaSpec, MANIFEST_KEPT, type ManifestSpec } from '../scripts/delta.js';
import { publishScript, stageScript } from '../scripts/release.js';
import { nginxTestCommand } from '../scripts/services.js';
import { upstreamFirstScript } from '../scripts/upstream.js';

/** How the staged archive reaches a host: uploaded on stdin (upload) or fetched by the host (fetch). */
export interface Delivery {
  /** The step's name, for its failure. */
  what: 'upload' | 'fetch';
  /** The fetch commands (scripts/fetch.ts); unset: the archive comes first on stdin. */
  fetch?: Shell;
  /** What goes on stdin before the rendered files: the archive, or curl's config (nothing for a path). */
  head: () => AsyncIterable<Buffer>;
  headNote: string;
  dotenv?: string;
  /** Set: head() is this delta from a base release (scripts/delta.ts), not the archive. */
  delta?: DeltaSpec;
  /** Set: the staged tree is checked against this manifest and keeps it (a later delta's base). */
  manifest?: ManifestSpec;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The host refused a delta (its base is missing, or failed verification): the reason, for a full upload. */
export class DeltaRefused extends Error {}

/**
 * Stages the release on one host in one round trip that also links a ready environment, checks nginx and
 * publishes when it can. Where nginx is installed, nginx -t runs as the install will run it (services.sudo +
 * services.nginx.test), or as the deploy user where nginx is not managed; a rejection is reported as the nginx
 * check's failure. Through services.helper there is no such check here: the helper's install validates the site.
 */
export async function stageOnHost(run: TaskRun, h: HostRun, release: Release, delivery: Delivery) {
  const key = release.envKeys.get(h.host.name) ?? null;
  const envReady = key === null || h.state.envs.includes(key);
  const files = release.files.get(h.host.name) ?? [];
  // Configs the live release has the same are copied from it on the host: only changed ones are sent.
  const reused = files.filter((f) => h.state.rendered?.[f.name] === sha256(f.content)).map((f) => f.name);
  const sent = files.filter((f) => !reused.includes(f.name));
  const staged = h.paths.staging(release.id);
  const spec = {
    deployTo: h.paths.root,
    id: release.id,
    sha256: release.archive.sha256,
    bytes: release.archive.bytes,
    files,
    shared: run.config.shared,
    fetch: delivery.fetch,
    dotenv: delivery.dotenv,
    delta: delivery.delta,
    manifest: delivery.manifest,
    reused,
  };
  const meta = releaseMeta(release, key);
  // Not through the helper: as root, nginx -t with a -p/-c of the deploy user's choosing would load any config
  // (load_module, logs anywhere); as the deploy user it fails where nginx never ran. The helper checks the
  // site itself, as root, when the configs step installs it, still before the switch.
  const helper = run.config.services?.helper;
  const nginxTest =
    h.state.nginx && !helper ? (nginxTestCommand(run.config.services) ?? sh`${h.state.nginx} -t`) : undefined;
  const command = script(
    stageScript(spec),
    key && envReady ? linkEnvironmentScript(run.config.dependencies.type, h.paths.root, release.id, key) : undefined,
    // listen 'port': the site includes run/upstream.conf; a first deploy makes it (blue's port) before the check.
    nginxTest && files.some((f) => f.name === 'nginx.conf')
      ? script(upstreamFirstScript(run.config.cutover, h.paths.root), nginxCheckScript(nginxTest, staged))
      : undefined,
    envReady ? publishScript(h.paths.root, meta) : undefined,
  );
  const dotenvNote =
    delivery.dotenv === undefined ? [] : [`the .env file (${Buffer.byteLength(delivery.dotenv)} bytes)`];
  const reusedNote = reused.length ? [`(${reused.join(', ')}: the live release's, copied on the host)`] : [];
  const stdinNote = [delivery.headNote, ...sent.map((f) => `${f.name}:\n${f.content}`), ...dotenvNote, ...reusedNote]
    .filter(Boolean)
    .join('\n');
  const stdin = Readable.from(
    (async function* () {
      yield* delivery.head();
      for (const f of sent) yield Buffer.from(f.content);
      if (delivery.dotenv !== undefined) yield Buffer.from(delivery.dotenv);
    })(),
  );
  const result = await h.host.exec(command, { stdin, stdinNote });
  if (result.code !== 0) {
    const refused = new RegExp(`^${DELTA_REFUSED} (.*)$`, 'm').exec(result.stderr);
    if (delivery.delta && refused) throw new DeltaRefused(refused[1]);
    const nginxRejected = result.stderr.includes(`${NGINX_REJECTED}:`);
    if (nginxRejected) h.report.failedAt = 'nginx check';
    throw new CommandFailed(h.host.name, nginxRejected ? 'nginx check' : delivery.what, result);
  }
  if (envReady) h.state.meta[release.id] = meta;
  if (delivery.manifest && result.stdout.includes(MANIFEST_KEPT))
    h.state.manifests = { ...h.state.manifests, [release.id]: delivery.manifest.sha256 };
  const created = [...result.stdout.matchAll(/^@@created-shared (.+)$/gm)].map((m) => m[1]);
  return created.length ? `; created empty (0600): ${created.join(', ')}` : '';
}

const prepared = new WeakMap<
  Release,
  {
    manifest: Promise<TreeManifest | null>;
    bases: Map<string, ManifestFile[] | null>;
    deltas: Map<string, Promise<DeltaArchive>>;
  }
>();

const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

/**
 * The upload step: the archive on stdin, checksum-verified on the host (see stageOnHost). With `delta` (the default)
 * a host holding a release this deployer has the manifest of gets only what changed since it, in the same round
 * trip; when the host refuses that delta (its base was changed there) the archive follows in a second one.
 */
export function upload(run: TaskRun, release: Release) {
  const { archive } = release;
  // Once per release, whatever the batches (--rolling): the tree's manifest, and the delta from each base.
  if (!prepared.has(release)) {
    const manifest = run.config.delta ? treeManifest(run.config, archive) : Promise.resolve(null);
    prepared.set(release, { manifest, bases: new Map(), deltas: new Map() });
  }
  const { manifest, bases, deltas } = prepared.get(release)!;
  const cached = (sha: string) => {
    if (!bases.has(sha)) bases.set(sha, baseManifest(sha));
    return bases.get(sha) ?? null;
  };
  return async (h: HostRun): Promise<StepOutcome> => {
    const next = await manifest;
    const check = next ? { sha256: next.sha256, skip: next.skip } : undefined;
    let why = '';
    const base = next ? deltaBases(h.state).find((b) => cached(b.sha256) !== null) : undefined;
    if (next && base) {
      const files = cached(base.sha256)!;
      if (!deltas.has(base.sha256)) deltas.set(base.sha256, buildDelta(archive, next, { ...base, files }));
      const delta = await deltas.get(base.sha256)!;
      const { plan } = delta;
      const what = `${plan.changed} changed, ${plan.added} added, ${plan.removed} removed`;
      if (delta.bytes < archive.bytes) {
        try {
          const createdNote = await stageOnHost(run, h, release, {
            what: 'upload',
            head: async function* () {
              yield* createReadStream(delta.file) as AsyncIterable<Buffer>;
              yield Buffer.from(delta.skipText);
            },
            headNote: `the delta from ${base.id} (${delta.bytes} bytes), then the paths of it not linked`,
            delta: { ...delta, skipBytes: Buffer.byteLength(delta.skipText) },
            manifest: check,
          });
          const done = `delta from ${base.id} (${what}): ${kib(delta.bytes)} of ${kib(archive.bytes)}`;
          return run.tell(`${done}, verified${createdNote}`, `upload the ${done} and verify the release`);
        } catch (error) {
          if (!(error instanceof DeltaRefused)) throw error;
          why = `full upload: ${error.message}; `;
        }
      } else why = `full upload: the delta from ${base.id} (${kib(delta.bytes)}) is not smaller; `;
    }
    const createdNote = await stageOnHost(run, h, release, {
      what: 'upload',
      head: () => createReadStream(archive.file) as AsyncIterable<Buffer>,
      headNote: `the release archive (${archive.bytes} bytes)`,
      manifest: check,
    });
    const size = kib(archive.bytes);
    return run.tell(`${why}${size}, sha256 verified${createdNote}`, `upload ${size} and verify its sha256`);
  };
}
