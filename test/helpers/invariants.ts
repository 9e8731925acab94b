// The invariants a deploy root must satisfy after any fault (issue: "prove it survives").
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';

const RELEASE_ID = String.raw`\d{4}\.\d{2}\.\d{2}-\d{2}\.\d{2}\.\d{2}-[0-9a-f]{7}`;
const LOG_LINE = new RegExp(
  String.raw`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z (deploy|rollback) ${RELEASE_ID} .*by=\S+@\S+$`,
);

/** Returns the violations found (empty when all hold). `root` is the deploy root as the test sees it. */
export function invariantViolations(
  root: string,
  { tmpClean = true, appFiles = ['server.js', 'package.json', 'package-lock.json'] } = {},
): string[] {
  const problems: string[] = [];
  const releasesDir = path.join(root, 'releases');
  const releases = existsSync(releasesDir) ? readdirSync(releasesDir) : [];
  // 2. every directory under releases/ is complete: its metadata is written last, before the rename.
  for (const id of releases) {
    const dir = path.join(releasesDir, id);
    if (!existsSync(path.join(dir, '.slipway/release.json'))) problems.push(`partial release ${id} (no metadata)`);
    for (const f of appFiles) if (!existsSync(path.join(dir, f))) problems.push(`release ${id} lacks ${f}`);
  }
  // 1. current points at a complete release with a complete dependency environment.
  if (existsSync(path.join(root, 'current')) || isLink(path.join(root, 'current'))) {
    const target = readlinkSync(path.join(root, 'current'));
    const id = target.replace(/^releases\//, '');
    if (!releases.includes(id)) problems.push(`current points at ${target}, which is not a release`);
    else {
      const modules = path.join(releasesDir, id, 'node_modules');
      if (isLink(modules)) {
        // Resolved by hand: realpath would leave a /proc/<pid>/root view of another mount namespace.
        const env = path.dirname(path.resolve(path.dirname(modules), readlinkSync(modules)));
        if (!existsSync(path.join(env, '.complete')))
          problems.push(`live release ${id} uses an incomplete environment`);
      }
    }
  }
  // A run killed with SIGKILL cannot clean up: its temp work goes at the next deploy (tmpClean then).
  for (const entry of tmpClean && existsSync(path.join(root, 'tmp')) ? readdirSync(path.join(root, 'tmp')) : []) {
    if (!entry.startsWith('failed-')) problems.push(`leftover temp work tmp/${entry}`);
  }
  // 4. revisions.log has no torn line.
  const log = path.join(root, 'revisions.log');
  if (existsSync(log)) {
    const text = readFileSync(log, 'utf8');
    if (text && !text.endsWith('\n')) problems.push('revisions.log ends in a torn line');
    for (const line of text.split('\n').filter(Boolean))
      if (!LOG_LINE.test(line)) problems.push(`revisions.log line malformed: ${line}`);
  }
  return problems;
}

function isLink(p: string): boolean {
  try {
    readlinkSync(p);
    return true;
  } catch {
    return false;
  }
}
