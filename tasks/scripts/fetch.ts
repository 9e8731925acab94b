// Shell for a host fetching a release artifact from the store: by path (dir store) or with curl (http, s3),
// sha256-verified against the manifest, retried; the URL comes on stdin into a 0600 file, never on a command line.
import { layout } from '../lib/paths.js';
import { script, sh, type Shell } from '../lib/sh.js';

/** Where the host gets the artifact: a path, or a URL whose curl config (curlConfig) is this long on stdin. */
export type FetchFrom = { path: string } | { curlConfigBytes: number };

export const FETCH_ATTEMPTS = 3;

/** curl's config file for one URL (curl -K): a quoted string, backslashes and quotes escaped. */
export function curlConfig(url: string): string {
  return `url = "${url.replace(/[\\"]/g, (c) => `\\${c}`)}"\n`;
}

/**
 * Fetches the artifact into tmp/<id>.tar.gz and checks its sha256, up to FETCH_ATTEMPTS times; on failure
 * removes the staged release and exits 1 naming why (the store's error, or the checksum that did not match).
 */
export function fetchScript(deployTo: string, id: string, key: string, sha256: string, from: FetchFrom): Shell {
  const p = layout(deployTo);
  const archive = p.archive(id);
  const conf = p.fetchConfig(id);
  const get =
    'path' in from
      ? sh`cat -- ${from.path} > ${archive}`
      : sh`curl -fsS --connect-timeout 10 --max-time 900 -K ${conf} -o ${archive}`;
  return script(
    'path' in from ? undefined : sh`(umask 077 && head -c ${from.curlConfigBytes} > ${conf})`,
    sh`fetched= why=`,
    sh`for attempt in ${Array.from({ length: FETCH_ATTEMPTS }, (_, i) => String(i + 1))}; do`,
    sh`  rm -f ${archive}`,
    sh`  if why=$( (umask 077 && ${get}) 2>&1 ); then`,
    sh`    if echo ${`${sha256}  ${archive}`} | sha256sum -c --status -; then`,
    sh`      fetched=yes`,
    sh`      break`,
    sh`    fi`,
    sh`    printf -v why 'artifact %s: refused, its sha256 does not match the manifest'\\''s %s' ${key} ${sha256}`,
    sh`  fi`,
    sh`  [ "$attempt" = ${String(FETCH_ATTEMPTS)} ] || sleep "$attempt"`,
    sh`done`,
    'path' in from ? undefined : sh`rm -f ${conf}`,
    sh`if [ -z "$fetched" ]; then`,
    sh`  printf 'fetching artifact %s failed after %s attempts: %s\\n' ${key} ${String(FETCH_ATTEMPTS)} "$why" >&2`,
    sh`  rm -rf ${p.staging(id)} ${archive}`,
    sh`  exit 1`,
    sh`fi`,
  );
}
