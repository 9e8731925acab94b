// Ships the release archive to a host in one round trip: streamed once, sha256-verified on the host,
// extracted under tmp/<id>, rendered files (on stdin too, checksummed) and shared links added.
// Nothing appears under releases/ here.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { HostRun, StepOutcome, TaskRun } from './core/fleet.js';
import { CommandFailed, mustRun } from './core/host.js';
import { layout, linkFromRelease, sharedItems } from './core/paths.js';
import type { Shell } from './core/sh.js';
import { script, sh } from './core/sh.js';
import { linkEnvironmentScript } from './environment.js';
import type { ReleaseMeta } from './hosts.js';
import type { Release } from './release.js';
import { deployer, publishScript } from './switch.js';
import type { RenderedFile } from './templates.js';
import { NGINX_REJECTED, nginxCheckScript } from './templates.js';
import { nginxTestCommand, restoreConfigsScript } from './services.js';

export interface StageSpec {
  deployTo: string;
  id: string;
  sha256: string;
  /** The archive's size: stdin carries the archive, then each rendered file's bytes in order. */
  bytes: number;
  files: RenderedFile[];
  shared: { files: string[]; dirs: string[] };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** What the stage script reads on stdin: the archive, then the rendered files (never on a command line, where `ps` shows them). */
export function stageInput(archiveFile: string, files: RenderedFile[]): Readable {
  return Readable.from(
    (async function* () {
      yield* createReadStream(archiveFile);
      for (const f of files) yield Buffer.from(f.content);
    })(),
  );
}

function sharedLinks(spec: StageSpec): Shell[] {
  const p = layout(spec.deployTo);
  const staged = p.staging(spec.id);
  const { dirs, files, linked } = sharedItems(spec.shared);
  const missing = ', which does not exist: create its target, or remove the link';
  return [
    ...dirs.map((d) => sh`mkdir -p ${`${p.shared}/${d}`}`),
    // A shared file that does not exist yet is created empty and private: it usually holds secrets.
    // One that is a dangling link is an error: writing through it would create a file elsewhere.
    ...files.map((item) => [item, `${p.shared}/${item}`]).map(
      ([item, f]) =>
        sh`mkdir -p "$(dirname ${f})"; if [ -L ${f} ] && [ ! -e ${f} ]; then printf '%s is a symlink to %s%s\\n' ${f} "$(readlink ${f})" ${missing} >&2; exit 1; fi
[ -e ${f} ] || { (umask 077 && : > ${f}); echo ${`@@created-shared ${item}`}; }`,
    ),
    // No parent of these is a link in the release (buildArchive refuses such a tree), so rm -rf stays inside it.
    ...linked.map(
      (item) => sh`rm -rf ${`${staged}/${item}`}; mkdir -p "$(dirname ${`${staged}/${item}`})"; ln -s ${linkFromRelease(item, 'shared')} ${`${staged}/${item}`}`,
    ),
  ];
}

export function stageScript(spec: StageSpec): Shell {
  const p = layout(spec.deployTo);
  const staged = p.staging(spec.id);
  const archive = `${staged}.tar.gz`;
  return script(
    sh`set -eu`,
    sh`umask 022`,
    sh`mkdir -p ${[p.releases, p.shared, p.envs, p.cache, p.tmp]}`,
    // The archive carries the environment's .env: while it arrives, only the deploy user may read it.
    sh`chmod 700 ${p.tmp}`,
    // Leftovers of a dead run (we hold the lock, so nothing else is working here); failed-* are kept on purpose.
    sh`find ${p.tmp} -mindepth 1 -maxdepth 1 ! -name 'failed-*' -exec rm -rf {} +`,
    // So are environments a dead run left half-built (no .complete marker).
    sh`for e in ${p.envs}/.build-* ${p.envs}/*; do if [ -d "$e" ] && [ ! -e "$e/.complete" ]; then rm -rf "$e"; fi; done`,
    sh`mkdir ${staged}`,
    sh`(umask 077 && head -c ${spec.bytes} > ${archive})`,
    sh`echo ${`${spec.sha256}  ${archive}`} | sha256sum -c --status - || { echo "upload corrupted: sha256 of the received archive does not match" >&2; rm -rf ${staged} ${archive}; exit 1; }`,
    sh`tar -xzf ${archive} -C ${staged} --no-same-owner`,
    sh`rm -f ${archive}`,
    sh`mkdir -p ${`${staged}/.slipway`}`,
    // After the archive, so they win over anything it holds at the same path.
    // Each a new file (rm, then O_EXCL): never written through a link, and a secret one is 0600 even where the archive had it.
    ...spec.files.map(
      (f) => sh`rm -f ${`${staged}/.slipway/${f.name}`} && (umask ${f.secret ? '077' : '022'} && set -C && head -c ${Buffer.byteLength(f.content)} > ${`${staged}/.slipway/${f.name}`})`,
    ),
    spec.files.length
      ? sh`printf '%s  %s\\n' ${spec.files.flatMap((f) => [sha256(f.content), `${staged}/.slipway/${f.name}`])} | sha256sum -c --status - || { echo "upload corrupted: a rendered file arrived incomplete" >&2; rm -rf ${staged}; exit 1; }`
      : undefined,
    // .env.<environment> becomes shared/.env, private to the deploy user, linked into the release.
    sh`if [ -f ${`${staged}/.slipway/dotenv`} ]; then rm -f ${`${p.shared}/.env.new`} && (umask 077 && cp ${`${staged}/.slipway/dotenv`} ${`${p.shared}/.env.new`}) && chmod 600 ${`${p.shared}/.env.new`} && mv -f ${`${p.shared}/.env.new`} ${`${p.shared}/.env`} && rm -f ${`${staged}/.slipway/dotenv`} && rm -rf ${`${staged}/.env`} && ln -s ../../shared/.env ${`${staged}/.env`}; fi`,
    ...sharedLinks(spec),
  );
}

export function releaseMeta(release: Release, envKey: string | null): ReleaseMeta {
  const { ref, commit } = release.archive;
  return { id: release.id, ref, commit, deployer: deployer(), deployedAt: new Date().toISOString(), status: 'ok', ...(envKey ? { envKey } : {}) };
}

/**
 * The upload step: one round trip that also links a ready environment, checks nginx and publishes when it can.
 * Where nginx is installed, nginx -t runs as the install will run it (services.sudo + services.nginx.test),
 * or as the deploy user where nginx is not managed; a rejection is reported as the nginx check's failure.
 * Through services.helper there is no such check here: the helper's install validates the site.
 */
export function upload(run: TaskRun, release: Release) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const key = release.envKeys.get(h.host.name) ?? null;
    const envReady = key === null || h.state.envs.includes(key);
    const files = release.files.get(h.host.name) ?? [];
    const staged = h.paths.staging(release.id);
    const spec = { deployTo: h.paths.root, id: release.id, sha256: release.archive.sha256, bytes: release.archive.bytes, files, shared: run.config.shared };
    const meta = releaseMeta(release, key);
    // Not through the helper: as root, nginx -t with a -p/-c of the deploy user's choosing would load any config
    // (load_module, logs anywhere); as the deploy user it fails where nginx never ran. The helper checks the
    // site itself, as root, when the configs step installs it, still before the switch.
    const helper = run.config.services?.helper;
    const nginxTest = h.state.nginx && !helper ? (nginxTestCommand(run.config.services) ?? sh`${h.state.nginx} -t`) : undefined;
    const command = script(
      stageScript(spec),
      key && envReady ? linkEnvironmentScript(run.config.dependencies.type, h.paths.root, release.id, key) : undefined,
      nginxTest && files.some((f) => f.name === 'nginx.conf') ? nginxCheckScript(nginxTest, staged) : undefined,
      envReady ? publishScript(h.paths.root, meta) : undefined,
    );
    const stdinNote = [`the release archive (${release.archive.bytes} bytes)`, ...files.map((f) => `${f.name}:\n${f.content}`)].join('\n');
    const result = await h.host.exec(command, { stdin: stageInput(release.archive.file, files), stdinNote });
    if (result.code !== 0) {
      const nginxRejected = result.stderr.includes(`${NGINX_REJECTED}:`);
      if (nginxRejected) h.result.failedAt = 'nginx check';
      throw new CommandFailed(h.host.name, nginxRejected ? 'nginx check' : 'upload', result);
    }
    if (envReady) h.state.meta[release.id] = meta;
    const size = `${(release.archive.bytes / 1024).toFixed(1)} KiB`;
    const created = [...result.stdout.matchAll(/^@@created-shared (.+)$/gm)].map((m) => m[1]);
    const createdNote = created.length ? `; created empty (0600): ${created.join(', ')}` : '';
    return run.tell(`${size}, sha256 verified${createdNote}`, `upload ${size} and verify its sha256`);
  };
}

/** Undoes a failed prepare on a host. */
export function discard(run: TaskRun, release: Release) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const services = run.config.services;
    const command = script(services ? restoreConfigsScript(services, h.paths.root) : undefined, discardScript(h.paths.root, release.id, run.options.keepFailed));
    const kept = await mustRun(h.host, 'cleanup', command);
    return kept.trim() ? `kept for inspection: ${kept.trim()}` : 'removed the unfinished release';
  };
}

/** Removes a failed release's work: gone, or moved aside as tmp/failed-<id> with --keep-failed. */
export function discardScript(deployTo: string, id: string, keepFailed: boolean): Shell {
  const p = layout(deployTo);
  const current = sh`"$(readlink ${p.current} 2>/dev/null || true)"`;
  return script(
    sh`set -eu`,
    // Only when it never went live: a release the switch reached is not ours to delete any more.
    sh`if [ -d ${p.release(id)} ] && [ ${current} != ${`releases/${id}`} ]; then mv -T ${p.release(id)} ${p.staging(id)}; fi`,
    sh`rm -f ${`${p.staging(id)}.tar.gz`}`,
    keepFailed
      ? sh`if [ -d ${p.staging(id)} ]; then rm -rf ${p.failed(id)}; mv -T ${p.staging(id)} ${p.failed(id)}; echo ${p.failed(id)}; fi`
      : sh`rm -rf ${p.staging(id)}`,
  );
}
