// What a host holds: its releases, the live one and the ones marked bad, as read by the inspect script.
import type { ReleaseMeta } from './metadata.js';

export interface HostState {
  /** The host's own clock, seconds since the epoch. */
  now: number;
  live: string | null;
  releases: string[];
  meta: Record<string, ReleaseMeta>;
  envs: string[];
  runtime: { node: string; python: string; platform: string };
  nginx: string | null;
  writable: boolean;
  /** Per release: the sha256 of the manifest the host verified it by (a delta's possible base). */
  manifests?: Record<string, string>;
}

export function badReleases(state: HostState): string[] {
  return state.releases.filter((id) => state.meta[id]?.status === 'bad');
}
