// Shell for a release's own files: staging the upload, publishing it, discarding it, marking it bad.
import { createHash } from 'node:crypto';
import {
  COMPLETE,
  currentTarget,
  ENV_BUILD_PREFIX,
  FAILED_PREFIX,
  layout,
  linkFromRelease,
  releaseFiles,
  sharedItems,
} from '../lib/paths.js';
import { secrets } from '../lib/redact.js';
import { script, sh, type Shell } from '../lib/sh.js';
import type { Release } from '../release/archive.js';
import { releaseMeta, type ReleaseMeta } from '../release/metadata.js';
import type { RenderedFile } from '../release/templates.js';

/**
 * Marks a release bad in its metadata: `rollback` skips it and purge removes it first. The reason is
 * redacted before it is cut short (a cut secret would no longer match), and the metadata comes on
 * stdin: a failure's output is no business of the command line, where `ps` on the host shows it.
 */
export function markBadScript(
  deployTo: string,
  release: Release,
  envKey: string | null,
  reason: string,
): { script: Shell; stdin: string } {
  const file = releaseFiles(layout(deployTo).release(release.id)).meta;
  const meta = {
    ...releaseMeta(release, envKey),
    status: 'bad',
    reason: secrets.redact(reason).split('\n').slice(0, 3).join(' ').slice(0, 300),
  };
  const stdin = `${JSON.stringify(meta)}\n`;
  const bytes = Buffer.byteLength(stdin);
  const write = sh`head -c ${bytes} > ${`${file}.new`} && mv -f ${`${file}.new`} ${file}`;
  return {
    script: script(sh`if [ -d "$(dirname ${file})" ]; then ${write}; else head -c ${bytes} > /dev/null; fi`),
    stdin,
  };
}

/** Writes the metadata into the staged release and renames it into releases/: it is complete from here. */
export function publishScript(deployTo: string, meta: ReleaseMeta): Shell {
  const p = layout(deployTo);
  const staged = p.staging(meta.id);
  return script(
    sh`printf '%s\\n' ${JSON.stringify(meta)} > ${releaseFiles(staged).meta}`,
    sh`mv -T ${staged} ${p.release(meta.id)}`,
  );
}

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

function sharedLinks(spec: StageSpec): Shell[] {
  const p = layout(spec.deployTo);
  const staged = p.staging(spec.id);
  const { dirs, files, linked } = sharedItems(spec.shared);
  const missing = ', which does not exist: create its target, or remove the link';
  return [
    ...dirs.map((d) => sh`mkdir -p ${p.sharedItem(d)}`),
    // A shared file that does not exist yet is created empty and private: it usually holds secrets.
    // One that is a dangling link is an error: writing through it would create a file elsewhere.
    ...files
      .map((item) => [item, p.sharedItem(item)])
      .map(
        ([item, f]) =>
          sh`mkdir -p "$(dirname ${f})"; if [ -L ${f} ] && [ ! -e ${f} ]; then printf '%s is a symlink to %s%s\\n' ${f} "$(readlink ${f})" ${missing} >&2; exit 1; fi
[ -e ${f} ] || { (umask 077 && : > ${f}); echo ${`@@created-shared ${item}`}; }`,
      ),
    // No parent of these is a link in the release (buildArchive refuses such a tree), so rm -rf stays inside it.
    ...linked.map(
      (item) =>
        sh`rm -rf ${`${staged}/${item}`}; mkdir -p "$(dirname ${`${staged}/${item}`})"; ln -s ${linkFromRelease(item, 'shared')} ${`${staged}/${item}`}`,
    ),
  ];
}

export function stageScript(spec: StageSpec): Shell {
  const p = layout(spec.deployTo);
  const staged = p.staging(spec.id);
  const archive = p.archive(spec.id);
  const files = releaseFiles(staged);
  return script(
    sh`set -eu`,
    sh`umask 022`,
    sh`mkdir -p ${[p.releases, p.shared, p.envs, p.cache, p.tmp]}`,
    // The archive carries the environment's .env: while it arrives, only the deploy user may read it.
    sh`chmod 700 ${p.tmp}`,
    // Leftovers of a dead run (we hold the lock, so nothing else is working here); failed-* are kept on purpose.
    sh`find ${p.tmp} -mindepth 1 -maxdepth 1 ! -name ${`${FAILED_PREFIX}*`} -exec rm -rf {} +`,
    // So are environments a dead run left half-built (no .complete marker).
    sh`for e in ${p.envs}/${ENV_BUILD_PREFIX}* ${p.envs}/*; do if [ -d "$e" ] && [ ! -e "$e"/${COMPLETE} ]; then rm -rf "$e"; fi; done`,
    sh`mkdir ${staged}`,
    sh`(umask 077 && head -c ${spec.bytes} > ${archive})`,
    sh`echo ${`${spec.sha256}  ${archive}`} | sha256sum -c --status - || { echo "upload corrupted: sha256 of the received archive does not match" >&2; rm -rf ${staged} ${archive}; exit 1; }`,
    sh`tar -xzf ${archive} -C ${staged} --no-same-owner`,
    sh`rm -f ${archive}`,
    sh`mkdir -p ${files.slipway}`,
    // After the archive, so they win over anything it holds at the same path.
    // Each a new file (rm, then O_EXCL): never written through a link, and a secret one is 0600 even where the archive had it.
    ...spec.files.map(
      (f) =>
        sh`rm -f ${files.rendered(f.name)} && (umask ${f.secret ? '077' : '022'} && set -C && head -c ${Buffer.byteLength(f.content)} > ${files.rendered(f.name)})`,
    ),
    spec.files.length
      ? sh`printf '%s  %s\\n' ${spec.files.flatMap((f) => [sha256(f.content), files.rendered(f.name)])} | sha256sum -c --status - || { echo "upload corrupted: a rendered file arrived incomplete" >&2; rm -rf ${staged}; exit 1; }`
      : undefined,
    // .env.<environment> becomes shared/.env, private to the deploy user, linked into the release.
    sh`if [ -f ${files.dotenv} ]; then rm -f ${`${p.sharedEnv}.new`} && (umask 077 && cp ${files.dotenv} ${`${p.sharedEnv}.new`}) && chmod 600 ${`${p.sharedEnv}.new`} && mv -f ${`${p.sharedEnv}.new`} ${p.sharedEnv} && rm -f ${files.dotenv} && rm -rf ${files.env} && ln -s ${linkFromRelease('.env', 'shared')} ${files.env}; fi`,
    ...sharedLinks(spec),
  );
}

/** Removes a failed release's work: gone, or moved aside as tmp/failed-<id> with --keep-failed. */
export function discardScript(deployTo: string, id: string, keepFailed: boolean): Shell {
  const p = layout(deployTo);
  const current = sh`"$(readlink ${p.current} 2>/dev/null || true)"`;
  return script(
    sh`set -eu`,
    // Only when it never went live: a release the switch reached is not ours to delete any more.
    sh`if [ -d ${p.release(id)} ] && [ ${current} != ${currentTarget(id)} ]; then mv -T ${p.release(id)} ${p.staging(id)}; fi`,
    sh`rm -f ${p.archive(id)}`,
    keepFailed
      ? sh`if [ -d ${p.staging(id)} ]; then rm -rf ${p.failed(id)}; mv -T ${p.staging(id)} ${p.failed(id)}; echo ${p.failed(id)}; fi`
      : sh`rm -rf ${p.staging(id)}`,
  );
}
