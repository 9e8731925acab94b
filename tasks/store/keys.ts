// Store keys and the artifact layout in a store (after yodeploy): <app>/<environment>/<id>.tar.gz, its manifest
// <id>.json beside it, and <app>/<environment>/latest (the newest id), written last.

/** A key is relative, of path segments without "." or ".." (it becomes a file path or a URL path). */
export function checkKey(key: string): string {
  const ok = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(key) && !key.split('/').some((s) => s === '.' || s === '..');
  if (!ok) throw new Error(`bad store key "${key}": expected segments of letters, digits, ".", "_" and "-"`);
  return key;
}

export const artifactKeys = (application: string, environment: string) => {
  const dir = `${application}/${environment}`;
  return {
    dir,
    archive: (id: string) => `${dir}/${id}.tar.gz`,
    manifest: (id: string) => `${dir}/${id}.json`,
    latest: `${dir}/latest`,
  };
};
