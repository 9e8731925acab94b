// Shell for delta releases: a staged tree's manifest (the text release/delta.ts's manifestText gives for it), and a
// release assembled from a base release (hard links to its unchanged files) plus a small tar of what changed, then
// verified by that manifest's sha256. On a base that fails it, the host says why and the deployer uploads in full.
import { layout } from '../lib/paths.js';
import { script, sh, type Shell } from '../lib/sh.js';

/** What the host prints on stderr (then the reason) when a delta cannot be applied: the deployer uploads in full. */
export const DELTA_REFUSED = '@@delta-refused';
/** What the host prints when the staged tree matched its manifest, which is kept in the release for the next delta. */
export const MANIFEST_KEPT = '@@manifest-kept';

/** The manifest of the new tree: its expected sha256, and the paths slipway overlays (left out of it). */
export interface ManifestSpec {
  sha256: string;
  skip: string[];
}

/** A delta on stdin: its tar.gz (bytes, sha256), then the base's paths not to link, one a line (skipBytes). */
export interface DeltaSpec {
  base: string;
  /** The sha256 of the base's manifest, as the host recorded it and the deployer holds it. */
  baseSha256: string;
  bytes: number;
  sha256: string;
  skipBytes: number;
}

/** The files a release keeps its manifest in (beside its metadata in .slipway/). */
export const manifestFiles = (releaseDir: string) => ({
  text: `${releaseDir}/.slipway/manifest`,
  sha256: `${releaseDir}/.slipway/manifest.sha256`,
});

/** A release's work files under tmp/ while a delta arrives and its manifest is checked (removed by discardScript). */
export function deltaWork(deployTo: string, id: string) {
  const at = (suffix: string) => `${layout(deployTo).tmp}/${id}.${suffix}`;
  const work = {
    tarball: at('delta.tar.gz'),
    skip: at('delta.skip'),
    kept: at('delta.kept'),
    manifest: at('manifest'),
  };
  // With treeManifestScript's own files beside the manifest.
  const all = [...Object.values(work), ...['skip', 'list', 'sums'].map((s) => `${work.manifest}.${s}`)];
  return { ...work, all };
}

const FIND_FORMAT = '%P\\t%y\\t%m\\t%l\\n';
// Drops the listing's lines at or under a path of the first file (the overlays).
const DROP_OVERLAYS =
  'FILENAME==ARGV[1]{x[++n]=$0;next} {for(i=1;i<=n;i++) if($1==x[i]||index($1,x[i] "/")==1) next; print}';
const FILE_PATHS = '$2=="f"{print $1}';
// Joins the sorted listing with the sha256 of each file, in the same order.
const JOIN_SUMS = 'FILENAME==ARGV[1]{s[FNR]=$0;next} $2=="f"{print $1,$3,s[++i];next} {print $1,"link",$4}';

/** Writes the manifest of the tree in `dir` (without the overlays) to `out`, sorted as LC_ALL=C sort sorts. */
export function treeManifestScript(dir: string, out: string, skip: string[]): Shell {
  const [x, list, sums] = [`${out}.skip`, `${out}.list`, `${out}.sums`];
  return script(
    sh`printf '%s\\n' ${skip} > ${x}`,
    sh`(cd ${dir} && find . -mindepth 1 \\( -type f -o -type l \\) -printf ${FIND_FORMAT}) |`,
    sh`  awk -F '\t' ${DROP_OVERLAYS} ${x} - | LC_ALL=C sort > ${list}`,
    sh`awk -F '\t' ${FILE_PATHS} ${list} | tr '\\n' '\\0' | (cd ${dir} && xargs -0 -r sha256sum --) |`,
    sh`  cut -c1-64 > ${sums}`,
    sh`awk -F '\t' -v 'OFS=\t' ${JOIN_SUMS} ${sums} ${list} > ${out}`,
    sh`rm -f ${x} ${list} ${sums}`,
  );
}

/**
 * Receives the delta (its sha256 checked as an archive's), hard-links the base's unchanged files into the staged
 * release, extracts the tar over it: nothing of the base is written to (its files are linked, never opened for
 * writing; whatever changed is a new file). A base without its manifest refuses the delta at once.
 */
export function receiveDeltaScript(deployTo: string, id: string, delta: DeltaSpec): Shell {
  const p = layout(deployTo);
  const staged = p.staging(id);
  const base = p.release(delta.base);
  const { tarball, skip, kept } = deltaWork(deployTo, id);
  const baseManifest = manifestFiles(base).text;
  const drop = 'FILENAME==ARGV[1]{s[$0]=1;next} !($1 in s)';
  return script(
    sh`(umask 077 && head -c ${delta.bytes} > ${tarball})`,
    sh`head -c ${delta.skipBytes} > ${skip}`,
    sh`if ! echo ${`${delta.sha256}  ${tarball}`} | sha256sum -c --status -; then`,
    sh`  echo "upload corrupted: sha256 of the received delta does not match" >&2`,
    sh`  rm -rf ${staged} ${tarball} ${skip}`,
    sh`  exit 1`,
    sh`fi`,
    sh`refuse() {`,
    sh`  printf '%s %s\\n' ${DELTA_REFUSED} "$1" >&2`,
    sh`  rm -rf ${staged} ${tarball} ${skip} ${kept}`,
    sh`  exit 1`,
    sh`}`,
    sh`if ! echo ${`${delta.baseSha256}  ${baseManifest}`} | sha256sum -c --status - 2>/dev/null; then`,
    sh`  refuse ${`base ${delta.base} has no manifest, or it changed`}`,
    sh`fi`,
    sh`awk -F '\t' ${drop} ${skip} ${baseManifest} > ${kept}`,
    sh`if ! cut -f1 ${kept} | tr '\\n' '\\0' | (cd ${base} && xargs -0 -r cp -P -l --parents -t ${staged} --); then`,
    sh`  refuse ${`base ${delta.base} failed verification: files of it are missing`}`,
    sh`fi`,
    sh`tar -xzf ${tarball} -C ${staged} --no-same-owner --no-same-permissions`,
    sh`rm -f ${tarball} ${skip}`,
  );
}

/**
 * Computes the staged tree's manifest and compares its sha256 with the one expected: every file's content and mode,
 * every link's target, and nothing more. A match keeps the manifest in the release (a later delta's base). A delta
 * that does not match is refused, naming the base's files that differ from its manifest; a full upload that does
 * not match (a host whose tar gives other modes) keeps no manifest: the next deploy uploads in full again.
 */
export function verifyManifestScript(deployTo: string, id: string, spec: ManifestSpec, delta?: DeltaSpec): Shell {
  const p = layout(deployTo);
  const staged = p.staging(id);
  const { manifest: out, kept } = deltaWork(deployTo, id);
  const files = manifestFiles(staged);
  return script(
    treeManifestScript(staged, out, spec.skip),
    sh`got=$(sha256sum < ${out})`,
    sh`if [ "\${got%% *}" = ${spec.sha256} ]; then`,
    sh`  mkdir -p ${`${staged}/.slipway`}`,
    sh`  mv -f ${out} ${files.text}`,
    sh`  echo ${spec.sha256} > ${files.sha256}`,
    sh`  echo ${MANIFEST_KEPT}`,
    delta
      ? script(
          sh`else`,
          // The base's files that are not as its manifest says (the first 5).
          sh`  changed=$(LC_ALL=C comm -13 ${out} ${kept} | cut -f1 | head -n 5 | tr '\\n' ' ')`,
          sh`  rm -f ${out}`,
          sh`  refuse ${`base ${delta.base} failed verification: differs from its manifest: `}"\${changed:-?}"`,
        )
      : script(sh`else`, sh`  rm -f ${out}`),
    sh`fi`,
    delta ? sh`rm -f ${kept}` : undefined,
  );
}
