// The metadata a release carries (.slipway/release.json): who deployed what, and its one-line summary.
import { hostname, userInfo } from 'node:os';
import type { Release } from './archive.js';

export interface ReleaseMeta {
  id: string;
  ref: string;
  commit: string;
  deployer: string;
  deployedAt: string;
  status: 'ok' | 'bad';
  reason?: string;
  envKey?: string;
  /** Deployed from the artifact store: the archive's key there and its sha256 (what `promote` compares). */
  artifact?: { key: string; sha256: string };
}

export function deployer(): string {
  return `${userInfo().username}@${hostname()}`;
}

export function revisionLine(action: string, id: string, detail: Record<string, string>): string {
  const fields = Object.entries(detail).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return [new Date().toISOString().replace(/\.\d+Z$/, 'Z'), action, id, ...fields, `by=${deployer()}`].join(' ');
}

/**
 * The envKey of a release that carries its own dependency environment (a prebuilt artifact on a host of its
 * platform): it uses none of envs/, so purge may remove those no other kept release uses.
 */
export const ENV_IN_RELEASE = 'in-release';

export function releaseMeta(release: Release, envKey: string | null): ReleaseMeta {
  const { ref, commit } = release.archive;
  return {
    id: release.id,
    ref,
    commit,
    deployer: deployer(),
    deployedAt: release.deployedAt,
    status: 'ok',
    ...(envKey ? { envKey } : release.artifact?.prebuiltEnvKey ? { envKey: ENV_IN_RELEASE } : {}),
    ...(release.artifact ? { artifact: { key: release.artifact.key, sha256: release.archive.sha256 } } : {}),
  };
}
