// The Host interface every step talks to; local (zx) and SSH (node-ssh) implement it.
import type { Readable, Writable } from 'node:stream';
import { SlipwayError } from '../lib/errors.js';
import { secrets } from '../lib/redact.js';
import type { Shell } from '../lib/sh.js';
import type { LockOwner } from '../lock/owner.js';

export interface ExecOptions {
  stdin?: string | Buffer | Readable;
  /** What stdin carries, in words, for --dry-run to show (it does not read the stream). */
  stdinNote?: string;
  /** Safe to run under --dry-run: reads state, changes nothing. */
  readonly?: boolean;
  /** Streams stdout here (ended when the command ends) instead of collecting it: ExecResult.stdout is then ''. */
  stdout?: Writable;
}

export interface ExecResult {
  /** null when the command ended without an exit status (connection dropped, killed). */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface HeldLock {
  owner: LockOwner;
  /** The dead owner whose stale lock was taken over, if any. */
  recovered?: LockOwner;
  /** What the `then` command given to lock() printed. */
  output: string;
  /** Releases the lock; a final command given here runs first, in the same round trip. */
  release(finalCommand?: Shell): Promise<ExecResult | undefined>;
}

export interface Host {
  readonly name: string;
  readonly roles: readonly string[];
  readonly deployTo: string;
  /** Where it is, for messages: "local" or "user@address:port". */
  readonly address: string;
  /**
   * Set once a command found the run's lock taken from it: every later command fails with LockLost, running
   * nothing.
   */
  readonly lockLost: boolean;
  exec(command: Shell, options?: ExecOptions): Promise<ExecResult>;
  /** Takes the deploy lock or throws LockHeld; `then` runs right after, in the same round trip where it can. */
  lock(owner: LockOwner, then?: Shell): Promise<HeldLock>;
  readLockOwner(): Promise<LockOwner | null>;
  /** Stops every command still running on the host (Ctrl-C): the process group, not just the channel. */
  interrupt(): Promise<void>;
  /** Removes the lock whoever holds it; returns the owner it had. */
  breakLock(): Promise<LockOwner | null>;
  close(): Promise<void>;
}

export class CommandFailed extends SlipwayError {
  constructor(
    readonly host: string,
    readonly what: string,
    readonly result: ExecResult,
  ) {
    // Redacted before it is cut: a cut inside a secret would leave a piece that no longer matches it.
    const tail = secrets
      .redact(result.stderr || result.stdout)
      .trim()
      .split('\n')
      .slice(-15)
      .join('\n');
    const status = result.code === null ? 'no exit status (connection lost or killed)' : `exit ${result.code}`;
    super(`${what} failed on ${host} (${status})${tail ? `:\n${tail}` : ''}`);
  }
}

/** Runs a command and throws CommandFailed unless it exited 0; returns stdout. */
export async function mustRun(host: Host, what: string, command: Shell, options?: ExecOptions): Promise<string> {
  const result = await host.exec(command, options);
  if (result.code !== 0) throw new CommandFailed(host.name, what, result);
  return result.stdout;
}
