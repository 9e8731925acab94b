// What a host holds: its releases, the live one and the ones marked bad, as read by the inspect script.
import type { ReleaseMeta } from './metadata.js';
import type { Slot } from './templates.js';

/** blue-green on a host: <deployTo>/run/state.json, with `live` read from where traffic really goes. */
export interface SlotState {
  /** The slot nginx sends traffic to (run/live.sock's target, or upstream.conf's slot); null before the first. */
  live: Slot | null;
  /** The release each slot's program was last started on. */
  blue: string | null;
  green: string | null;
  /** Set while a run works on the slots; left behind by a run that was killed: what it was doing. */
  operation: { action: string; release: string; slot: Slot; step: string; at: string } | null;
}

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
  /** blue-green: the slots, when the host has any. */
  slots?: SlotState;
  /** Per release: the sha256 of the manifest the host verified it by (a delta's possible base). */
  manifests?: Record<string, string>;
  /** The live release's rendered configs (.slipway/*.conf) by name: their sha256 (a deploy copies the same ones). */
  rendered?: Record<string, string>;
}

export function badReleases(state: HostState): string[] {
  return state.releases.filter((id) => state.meta[id]?.status === 'bad');
}

/** The releases blue-green's slots run or last ran: purge keeps them. */
export function slotReleases(state: HostState): string[] {
  return [state.slots?.blue, state.slots?.green].filter((id): id is string => typeof id === 'string');
}
