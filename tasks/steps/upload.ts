// Step: ship the release archive to each host in one round trip (staged under tmp/, not yet a release); the
// staging round trip is shared with the fetch step (steps/fetch.ts), where the host gets the archive from the store.
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { HostRun, StepOutcome } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import { CommandFailed } from '../hosts/host.js';
import { type Shell, script, sh } from '../lib/sh.js';
import type { Release } from '../release/archive.js';
import { releaseMeta } from '../release/metadata.js';
import { linkEnvironmentScript } from '../scripts/environment.js';
import { NGINX_REJECTED, nginxCheckScript } from '../scripts/nginx-check.js';
import { publishScript, stageScript } from '../scripts/release.js';
import { nginxTestCommand } from '../scripts/services.js';

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
}

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
    nginxTest && files.some((f) => f.name === 'nginx.conf') ? nginxCheckScript(nginxTest, staged) : undefined,
    envReady ? publishScript(h.paths.root, meta) : undefined,
  );
  const dotenvNote =
    delivery.dotenv === undefined ? [] : [`the .env file (${Buffer.byteLength(delivery.dotenv)} bytes)`];
  const stdinNote = [delivery.headNote, ...files.map((f) => `${f.name}:\n${f.content}`), ...dotenvNote]
    .filter(Boolean)
    .join('\n');
  const stdin = Readable.from(
    (async function* () {
      yield* delivery.head();
      for (const f of files) yield Buffer.from(f.content);
      if (delivery.dotenv !== undefined) yield Buffer.from(delivery.dotenv);
    })(),
  );
  const result = await h.host.exec(command, { stdin, stdinNote });
  if (result.code !== 0) {
    const nginxRejected = result.stderr.includes(`${NGINX_REJECTED}:`);
    if (nginxRejected) h.report.failedAt = 'nginx check';
    throw new CommandFailed(h.host.name, nginxRejected ? 'nginx check' : delivery.what, result);
  }
  if (envReady) h.state.meta[release.id] = meta;
  const created = [...result.stdout.matchAll(/^@@created-shared (.+)$/gm)].map((m) => m[1]);
  return created.length ? `; created empty (0600): ${created.join(', ')}` : '';
}

/** The upload step: the archive on stdin, checksum-verified on the host (see stageOnHost). */
export function upload(run: TaskRun, release: Release) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const createdNote = await stageOnHost(run, h, release, {
      what: 'upload',
      head: () => createReadStream(release.archive.file) as AsyncIterable<Buffer>,
      headNote: `the release archive (${release.archive.bytes} bytes)`,
    });
    const size = `${(release.archive.bytes / 1024).toFixed(1)} KiB`;
    return run.tell(`${size}, sha256 verified${createdNote}`, `upload ${size} and verify its sha256`);
  };
}
