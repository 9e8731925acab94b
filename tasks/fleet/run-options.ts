// What the task run (the engine) needs to know of how it was asked to run; the CLI builds it from its options.
import type { WaveSize } from '../config/rollout.js';
import type { ResolvedConfig } from '../config/types.js';
import type { HostRun } from './host-run.js';

export interface RunOptions {
  /** The task as it was called, with its arguments (`deploy`, `rollback:current`): what notifications name. */
  task?: string;
  /** false: the task asked for no connection to its hosts ahead (`connects: false`): it may not need them. */
  connects?: boolean;
  /** Print every step and command, change nothing. */
  dryRun: boolean;
  /** Deploy in batches of this many hosts. */
  rolling?: number;
  /** Go back to the previous release when a deploy fails after its switch. */
  autoRollback: boolean;
  /** Keep a failed release's work for inspection. */
  keepFailed: boolean;
  /** Allow a rollback to a release marked bad, or to hosts that disagree. */
  force: boolean;
  /** `logs --follow`: stream until interrupted. */
  follow?: boolean;
  /** `ssh -- COMMAND...`: the command's words. */
  command?: string[];
  /** Proceed without asking where a task would ask (pull into a protected environment). */
  yes?: boolean;
  /**
   * Accept and record unknown host keys of hosts a task connects itself (pull's source host); ssh hands it on to
   * OpenSSH as StrictHostKeyChecking=accept-new.
   */
  trustNewHosts?: boolean;
  /** deploy --artifact: the store's artifact to deploy (an id or "latest"). */
  artifact?: string;
  /** `--waves`: the rollout's waves, overriding rollout.waves. */
  waves?: WaveSize[];
  /**
   * Reads another environment of the same config (its hosts connected and inspected, never locked): what
   * `promote` and `artifacts` look at. The hosts are closed when the task run ends.
   */
  readEnvironment?: (name: string) => Promise<OtherEnvironment>;
}

/** Another environment's config and its hosts, each with the state read from it. */
export interface OtherEnvironment {
  config: ResolvedConfig;
  hosts: HostRun[];
}
