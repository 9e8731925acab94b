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
import { type DeltaSpec, deltaWork, type ManifestSpec, receiveDeltaScript, verifyManifestScript } from './delta.js';

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
    script: script(
      sh`if [ -d "$(dirname ${file})" ]; then`,
      sh`  ${write}`,
      sh`else`,
      sh`  head -c ${bytes} > /dev/null`,
      sh`fi`,
    ),
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
  /** Set: the archive is fetched from the store by this (scripts/fetch.ts), not read from stdin. */
  fetch?: Shell;
  /** The .env.<environment> text, after the rendered files on stdin (an artifact never holds it). */
  dotenv?: string;
  /** Set: stdin starts with this delta from a base release instead of the archive (scripts/delta.ts). */
  delta?: DeltaSpec;
  /** Set: the staged tree is checked against this manifest, kept in the release when it matches. */
  manifest?: ManifestSpec;
  /** Rendered files the live release holds the same (by sha256): copied from it, not on stdin. */
  reused?: string[];
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
      .map(([item, f]) =>
        script(
          sh`mkdir -p "$(dirname ${f})"`,
          sh`if [ -L ${f} ] && [ ! -e ${f} ]; then`,
          sh`  printf '%s is a symlink to %s%s\\n' ${f} "$(readlink ${f})" ${missing} >&2`,
          sh`  exit 1`,
          sh`fi`,
          sh`if [ ! -e ${f} ]; then`,
          sh`  (umask 077 && : > ${f})`,
          sh`  echo ${`@@created-shared ${item}`}`,
          sh`fi`,
        ),
      ),
    // No parent of these is a link in the release (buildArchive refuses such a tree), so rm -rf stays inside it.
    ...linked.map((item) => {
      const link = `${staged}/${item}`;
      return script(
        sh`rm -rf ${link}`,
        sh`mkdir -p "$(dirname ${link})"`,
        sh`ln -s ${linkFromRelease(item, 'shared')} ${link}`,
      );
    }),
  ];
}

export function stageScript(spec: StageSpec): Shell {
  const p = layout(spec.deployTo);
  const staged = p.staging(spec.id);
  const archive = p.archive(spec.id);
  const files = releaseFiles(staged);
  // Those copied from the live release are its own, known by their sha256 (inspect): only what came is checked.
  const renderedSums = [
    ...spec.files
      .filter((f) => !spec.reused?.includes(f.name))
      .flatMap((f) => [sha256(f.content), files.rendered(f.name)]),
    ...(spec.dotenv === undefined ? [] : [sha256(spec.dotenv), files.dotenv]),
  ];
  const sharedEnvNew = `${p.sharedEnv}.new`;
  return script(
    sh`set -eu`,
    sh`umask 022`,
    sh`mkdir -p ${[p.releases, p.shared, p.envs, p.cache, p.tmp]}`,
    // The archive carries the environment's .env: while it arrives, only the deploy user may read it.
    sh`chmod 700 ${p.tmp}`,
    // Leftovers of a dead run (we hold the lock, so nothing else is working here); failed-* are kept on purpose.
    sh`find ${p.tmp} -mindepth 1 -maxdepth 1 ! -name ${`${FAILED_PREFIX}*`} -exec rm -rf {} +`,
    // So are environments a dead run left half-built (no .complete marker).
    sh`for e in ${p.envs}/${ENV_BUILD_PREFIX}* ${p.envs}/*; do`,
    sh`  if [ -d "$e" ] && [ ! -e "$e"/${COMPLETE} ]; then`,
    sh`    rm -rf "$e"`,
    sh`  fi`,
    sh`done`,
    sh`mkdir ${staged}`,
    spec.delta
      ? receiveDeltaScript(spec.deployTo, spec.id, spec.delta)
      : script(
          spec.fetch ??
            script(
              sh`(umask 077 && head -c ${spec.bytes} > ${archive})`,
              sh`if ! echo ${`${spec.sha256}  ${archive}`} | sha256sum -c --status -; then`,
              sh`  echo "upload corrupted: sha256 of the received archive does not match" >&2`,
              sh`  rm -rf ${staged} ${archive}`,
              sh`  exit 1`,
              sh`fi`,
            ),
          // Modes as the archive has them under umask 022, for every user (root's tar would keep them as they are):
          // what a manifest says, and what a delta gives.
          sh`tar -xzf ${archive} -C ${staged} --no-same-owner --no-same-permissions`,
          sh`rm -f ${archive}`,
        ),
    spec.manifest ? verifyManifestScript(spec.deployTo, spec.id, spec.manifest, spec.delta) : undefined,
    sh`mkdir -p ${files.slipway}`,
    // After the archive, so they win over anything it holds at the same path.
    // Each a new file (rm, then O_EXCL): never written through a link, and a secret one is 0600 even where the
    // archive had it.
    // One the live release holds the same is copied from it (checked below like the others).
    // Which one is a value of the script, not its shape: the same code either way (scripts kept on a host).
    ...spec.files.map((f) => {
      const target = files.rendered(f.name);
      const umask = f.secret ? '077' : '022';
      const reused = spec.reused?.includes(f.name);
      return script(
        sh`if [ ${reused ? '1' : '0'} = 1 ]; then`,
        sh`  rm -f ${target} &&`,
        sh`    (umask ${umask} && set -C && cat -- ${releaseFiles(p.current).rendered(f.name)} > ${target})`,
        sh`else`,
        sh`  rm -f ${target} &&`,
        sh`    (umask ${umask} && set -C && head -c ${reused ? 0 : Buffer.byteLength(f.content)} > ${target})`,
        sh`fi`,
      );
    }),
    spec.dotenv === undefined
      ? undefined
      : script(
          sh`rm -f ${files.dotenv} &&`,
          sh`  (umask 077 && set -C && head -c ${Buffer.byteLength(spec.dotenv)} > ${files.dotenv})`,
        ),
    spec.files.length || spec.dotenv !== undefined
      ? script(
          sh`if [ ${renderedSums.length} != 0 ] &&`,
          sh`  ! printf '%s  %s\\n' ${renderedSums} | sha256sum -c --status -; then`,
          sh`  echo "upload corrupted: a rendered file arrived incomplete" >&2`,
          sh`  rm -rf ${staged}`,
          sh`  exit 1`,
          sh`fi`,
        )
      : undefined,
    // .env.<environment> becomes shared/.env, private to the deploy user, linked into the release.
    sh`if [ -f ${files.dotenv} ]; then`,
    sh`  rm -f ${sharedEnvNew} &&`,
    sh`    (umask 077 && cp ${files.dotenv} ${sharedEnvNew}) &&`,
    sh`    chmod 600 ${sharedEnvNew} &&`,
    sh`    mv -f ${sharedEnvNew} ${p.sharedEnv} &&`,
    sh`    rm -f ${files.dotenv} &&`,
    sh`    rm -rf ${files.env} &&`,
    sh`    ln -s ${linkFromRelease('.env', 'shared')} ${files.env}`,
    sh`fi`,
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
    sh`if [ -d ${p.release(id)} ] && [ ${current} != ${currentTarget(id)} ]; then`,
    sh`  mv -T ${p.release(id)} ${p.staging(id)}`,
    sh`fi`,
    sh`rm -f ${p.archive(id)} ${p.fetchConfig(id)} ${deltaWork(deployTo, id).all}`,
    keepFailed
      ? script(
          sh`if [ -d ${p.staging(id)} ]; then`,
          sh`  rm -rf ${p.failed(id)}`,
          sh`  mv -T ${p.staging(id)} ${p.failed(id)}`,
          sh`  echo ${p.failed(id)}`,
          sh`fi`,
        )
      : sh`rm -rf ${p.staging(id)}`,
  );
}
