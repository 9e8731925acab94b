// One host's part of a task run: its host, state, lock and the values its steps hand on.
import type { HostConfig } from '../config/types.js';
import type { HeldLock, Host } from '../hosts/host.js';
import { layout } from '../lib/paths.js';
import type { HostState } from '../release/state.js';

export interface HostRun {
  host: Host;
  config: HostConfig;
  paths: ReturnType<typeof layout>;
  /** Read when the task took the lock (or by `inspect`). */
  state: HostState;
  lock?: HeldLock;
  /** What --json reports for this host. */
  result: Record<string, unknown>;
}

/** What a step may return: a detail for its output line, or 'skipped'. */
export type StepOutcome = string | void | { skipped: string };

/** The live release to print for a host: what the run left there, what it read, or that it cannot know. */
export function liveRelease(h: HostRun): string {
  if (h.result.unknown) return 'unknown';
  // Another run holds this host's lock now: whatever this run read may be stale.
  if (h.host?.lockLost) return '(unknown)';
  return (h.result.live as string | undefined) ?? (h.state ? (h.state.live ?? '(none)') : '(unknown)');
}
