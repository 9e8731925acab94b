// Shell for `pull`: the source host packs its shared data (and runs the dump command), each target receives it
// into a staging dir under tmp/, and only once every target has all of it are the items swapped into shared/.
import { layout } from '../lib/paths.js';
import { raw, script, sh, type Shell } from '../lib/sh.js';

/** What `data` names (config key), every path relative to the shared dir. */
export interface PullData {
  dirs: string[];
  files: string[];
  dump?: { command: string; file: string };
}

/** The items a pull replaces in the target's shared dir, in order: dirs, files, the dump's file. */
export function pulledItems(data: PullData): string[] {
  return [...data.dirs, ...data.files, ...(data.dump ? [data.dump.file] : [])];
}

/** Where a target receives the pull before it is published. */
export const pullStaging = (deployTo: string, id: string) => `${layout(deployTo).tmp}/pull-${id}`;

/**
 * On the source: the shared dirs and files as one gzipped tar on stdout. A missing item fails before any byte
 * is written (the targets then receive nothing whole, and publish nothing).
 */
export function packDataScript(deployTo: string, data: PullData): Shell {
  const shared = layout(deployTo).shared;
  const items = [...data.dirs, ...data.files];
  return script(
    sh`set -e`,
    sh`cd ${shared}`,
    sh`for item in ${items}; do`,
    sh`  if [ ! -e "$item" ]; then echo "pull: no $item in "${shared} >&2; exit 3; fi`,
    sh`done`,
    sh`exec tar -c -z -f - -- ${items}`,
  );
}

/** On the source: the dump command's output on stdout, run in the shared dir; it fails the pull unless it exits 0. */
export function dumpScript(deployTo: string, command: string): Shell {
  return script(sh`set -e -o pipefail`, sh`cd ${layout(deployTo).shared}`, raw(command));
}

/** On a target: a fresh staging dir, then the source's tar from stdin extracted into it (owned by the deploy user). */
export function receiveDataScript(deployTo: string, id: string): Shell {
  const stage = pullStaging(deployTo, id);
  return script(
    sh`set -e`,
    sh`mkdir -p ${layout(deployTo).tmp}`,
    sh`chmod 0700 ${layout(deployTo).tmp}`,
    sh`rm -rf ${stage}`,
    sh`mkdir -m 0700 ${stage} ${`${stage}/data`}`,
    sh`tar -x -z -f - --no-same-owner -C ${`${stage}/data`}`,
    sh`du -sk ${`${stage}/data`} | cut -f1`,
  );
}

/** On a target: stdin (the dump's output) into its file in the staging dir. */
export function receiveDumpScript(deployTo: string, id: string, file: string): Shell {
  const target = `${pullStaging(deployTo, id)}/data/${file}`;
  return script(
    sh`set -e`,
    sh`mkdir -p ${layout(deployTo).tmp}`,
    sh`chmod 0700 ${layout(deployTo).tmp}`,
    sh`mkdir -p "$(dirname ${target})"`,
    sh`rm -rf ${target}`,
    sh`(umask 077 && cat > ${target})`,
    sh`wc -c < ${target}`,
  );
}

/**
 * On a target, once every target received everything: each item renamed into shared/ over the old one (the old
 * one moved aside first, then removed), the staging dir removed.
 */
export function publishDataScript(deployTo: string, id: string, items: string[]): Shell {
  const stage = pullStaging(deployTo, id);
  const shared = layout(deployTo).shared;
  return script(
    sh`set -e`,
    sh`mkdir -p ${`${stage}/old`}`,
    sh`n=0`,
    sh`for item in ${items}; do`,
    sh`  n=$((n + 1))`,
    sh`  mkdir -p "$(dirname ${shared}/"$item")"`,
    sh`  if [ -e ${shared}/"$item" ] || [ -L ${shared}/"$item" ]; then mv -T ${shared}/"$item" ${stage}/old/"$n"; fi`,
    sh`  mv -T ${stage}/data/"$item" ${shared}/"$item"`,
    sh`done`,
    sh`rm -rf ${stage}`,
  );
}

/** On a target, when the pull fails or is interrupted: its staging dir removed, shared/ untouched. */
export function discardPullScript(deployTo: string, id: string): Shell {
  return sh`rm -rf ${pullStaging(deployTo, id)}`;
}
