// One host's part of a task run: its host (once connected), its state (once read), its lock, and its report,
// whose typed fields are also how the steps hand values on (the release live before the switch, the configs
// that changed).
import type { HostConfig } from '../config/types.js';
import { type HeldLock, type Host, mustRun } from '../hosts/host.js';
import { layout } from '../lib/paths.js';
import type { Shell } from '../lib/sh.js';
import type { LockOwner } from '../lock/owner.js';
import type { HostState, SlotState } from '../release/state.js';
import type { Slot } from '../release/templates.js';
import type { Verdict } from '../scripts/service-checks.js';

/** A release as the `releases` task lists it. */
export interface ListedRelease {
  id: string;
  live: boolean;
  deployedAt: string | null;
  ref: string | null;
  commit: string | null;
  status: string;
  reason?: string;
}

/** What a task did on one host: the host's part of --json (cli/report.ts), filled in by the steps. */
export interface HostReport {
  /** Time spent in this host's steps. */
  seconds?: number;
  /** The step this host failed at. */
  failedAt?: string;
  /** The new release's id (deploy). */
  release?: string;
  /** The release live before this run's switch; null: none was. */
  previous?: string | null;
  /** The release this run left live (or, for `releases`, `check` and `status`, found live). */
  live?: string | null;
  /** Why the live release cannot be known (a going back cut off half way). */
  unknown?: string;
  /** The service configs the deploy installed (nginx, supervisor). */
  configsChanged?: string[];
  /** The releases purge removed. */
  purged?: string[];
  releases?: ListedRelease[];
  reachable?: boolean;
  writable?: boolean;
  /** Who held the lock when `check` looked. */
  lock?: LockOwner | null;
  checks?: Verdict[];
  /** The lock `unlock` removed. */
  removedLock?: LockOwner | null;
  /** `status`: supervisor's view, nginx -t, the health check; and which of them failed. */
  supervisor?: string;
  nginx?: string;
  health?: string;
  failed?: string[];
  /**
   * blue-green: the slot this run started and on which release, the slot live before it (null: none), whether
   * traffic moved to it, whether the old slot was drained and stopped since (a later wave's failure must start it
   * again to go back), and why it failed.
   */
  slot?: {
    started: Slot;
    release: string;
    from: { slot: Slot; release: string } | null;
    moved?: boolean;
    drained?: boolean;
    failed?: string;
  };
  /** blue-green (`releases`, `status`): the slots as the host records them. */
  slots?: SlotState;
}

export class HostRun {
  readonly paths: ReturnType<typeof layout>;
  readonly report: HostReport = {};
  /** Taken by `locked`. */
  lock?: HeldLock;
  private connectedHost?: Host;
  private rawHost?: Host;
  private readState?: HostState;

  constructor(readonly config: HostConfig) {
    this.paths = layout(config.deployTo);
  }

  /** The connected host. A task's steps run only once the run connected every host (TaskRun.each waits). */
  get host(): Host {
    if (!this.connectedHost) throw new Error(`${this.config.name}: used before the host was connected`);
    return this.connectedHost;
  }

  /** The host, or undefined before it is connected (an interrupt may come first). */
  get hostIfConnected(): Host | undefined {
    return this.connectedHost;
  }

  connected(host: Host): void {
    // Each batch of a --rolling run hands the same host again: keep the one proxy (the locks are keyed by it).
    if (host === this.rawHost) return;
    this.rawHost = host;
    // Every command on the host, whoever runs it (a step, a hook, an undo), sends the held command first.
    this.connectedHost = new Proxy(host, {
      get: (target, key) => {
        if (key === 'exec')
          return (...args: Parameters<Host['exec']>) => this.sendHeld().then(() => target.exec(...args));
        const value = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }

  private held?: HeldCommand;

  /**
   * Holds a command back (TaskRun.hold): it goes on its own just before the next command on this host, or
   * with the lock's release (takeHeld), never dropped. Whoever sends it calls `failed` if it fails, before
   * throwing its error.
   */
  hold(what: string, command: Shell, failed: (error: Error) => void): void {
    if (this.held) throw new Error(`${this.config.name}: a command is already held back`);
    this.held = { what, command, failed };
  }

  /** Takes the held command, to send it with another one. */
  takeHeld(): HeldCommand | undefined {
    const held = this.held;
    this.held = undefined;
    return held;
  }

  /** Sends the held command on its own; if it fails, so does the command that was to follow it. */
  private async sendHeld(): Promise<void> {
    const held = this.takeHeld();
    if (!held) return;
    await mustRun(this.host, held.what, held.command).catch((error: Error) => {
      held.failed(error);
      throw error;
    });
  }

  /** The host's state, read when the task took the lock (or by `inspect`). */
  get state(): HostState {
    if (!this.readState) throw new Error(`${this.config.name}: the host's state was used before it was read`);
    return this.readState;
  }

  set state(state: HostState) {
    this.readState = state;
  }

  /** The state, or undefined when the task has not read it. */
  get stateIfRead(): HostState | undefined {
    return this.readState;
  }
}

/** A command held back on a host: what it is (for errors), the command, and what to do if it fails. */
export interface HeldCommand {
  what: string;
  command: Shell;
  failed: (error: Error) => void;
}

/** What a step may return: a detail for its output line, or 'skipped'. */
export type StepOutcome = string | undefined | { skipped: string };

/** The live release to print for a host: what the run left there, what it read, or that it cannot know. */
export function liveRelease(h: HostRun): string {
  if (h.report.unknown) return 'unknown';
  // Another run holds this host's lock now: whatever this run read may be stale.
  if (h.hostIfConnected?.lockLost) return '(unknown)';
  const state = h.stateIfRead;
  return h.report.live ?? (state ? (state.live ?? '(none)') : '(unknown)');
}
