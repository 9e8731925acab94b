// The Host interface every step talks to; local (zx) and SSH (node-ssh) implement it.
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { secrets } from './redact.js';
import type { Shell } from './sh.js';

export interface ExecOptions {
  stdin?: string | Buffer | Readable;
  /** What stdin carries, in words, for --dry-run to show (it does not read the stream). */
  stdinNote?: string;
  /** Safe to run under --dry-run: reads state, changes nothing. */
  readonly?: boolean;
}

export interface ExecResult {
  /** null when the command ended without an exit status (connection dropped, killed). */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface LockOwner {
  user: string;
  machine: string;
  pid: number;
  task: string;
  startedAt: string;
  token: string;
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

export class LockHeld extends Error {
  constructor(readonly host: string, readonly owner: LockOwner | null) {
    super(
      owner
        ? `${owner.task} in progress by ${owner.user}@${owner.machine} (pid ${owner.pid}) since ${owner.startedAt} on ${host}; if that run is dead, \`unlock\` removes its lock`
        : `${host}: deploy lock held (owner unknown); if no run is active, \`unlock\` removes it`,
    );
  }
}

export interface Host {
  readonly name: string;
  readonly roles: readonly string[];
  readonly deployTo: string;
  /** Where it is, for messages: "local" or "user@address:port". */
  readonly address: string;
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

export class CommandFailed extends Error {
  constructor(readonly host: string, readonly what: string, readonly result: ExecResult) {
    // Redacted before it is cut: a cut inside a secret would leave a piece that no longer matches it.
    const tail = secrets.redact(result.stderr || result.stdout).trim().split('\n').slice(-15).join('\n');
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

/** Whether a process of this machine is alive: a lock owner on this machine whose pid is gone is dead. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed process stays a zombie until it is reaped, and kill(pid, 0) still succeeds on it.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return true; // no /proc (not Linux): trust kill()
  }
}

export function parseOwner(text: string): LockOwner | null {
  try {
    const owner = JSON.parse(text) as LockOwner;
    return typeof owner?.pid === 'number' && typeof owner.user === 'string' ? owner : null;
  } catch {
    return null;
  }
}
