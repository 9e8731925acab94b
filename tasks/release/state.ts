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
}

export function badReleases(state: HostState): string[] {
  return state.releases.filter((id) => state.meta[id]?.status === 'bad');
}
