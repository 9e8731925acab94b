// The Host interface every step talks to; local (zx) and SSH (node-ssh) implement it.
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
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
  /**
   * Where the pid means something: this boot of the machine, its pid namespace (containers on the
   * host network and cloned CI runners share the hostname), and the process's start time (pids are
   * reused). Absent in owners written by older versions, or where /proc cannot tell.
   */
  bootId?: string;
  pidNamespace?: string;
  startTime?: string;
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

/** The run's lock on a host was taken over (the run stalled past the stale limit) or broken: nothing more may change there. */
export class LockLost extends Error {
  constructor(readonly host: string) {
    super(`${host}: this run no longer holds the deploy lock (another run took it over, or \`unlock\` broke it): nothing more is changed there`);
  }
}

export interface Host {
  readonly name: string;
  readonly roles: readonly string[];
  readonly deployTo: string;
  /** Where it is, for messages: "local" or "user@address:port". */
  readonly address: string;
  /** Set once a command found the run's lock taken from it: every later command fails with LockLost, running nothing. */
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

const readOr = (read: () => string): string | undefined => {
  try {
    return read().trim();
  } catch {
    return undefined;
  }
};

/** A process's start time since boot (field 22 of /proc/<pid>/stat), or undefined without /proc. */
export function processStartTime(pid: number): string | undefined {
  const stat = readOr(() => readFileSync(`/proc/${pid}/stat`, 'utf8'));
  // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

/** This process's place, for the lock owner: see LockOwner.bootId. */
export function processIdentity(): Pick<LockOwner, 'bootId' | 'pidNamespace' | 'startTime'> {
  return {
    bootId: readOr(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')),
    pidNamespace: readOr(() => readlinkSync('/proc/self/ns/pid')),
    startTime: processStartTime(process.pid),
  };
}

/**
 * Whether a lock owner is certainly dead: it ran on this machine, in this boot and this pid
 * namespace, and no process with its pid and start time is left. Anything else (another namespace,
 * an owner of an older version) is judged only by its heartbeat.
 */
export function ownerDeadHere(owner: LockOwner): boolean {
  const here = processIdentity();
  if (owner.machine !== hostname() || owner.bootId !== here.bootId || owner.pidNamespace !== here.pidNamespace) return false;
  if (!pidAlive(owner.pid)) return true;
  const started = processStartTime(owner.pid);
  return started !== undefined && owner.startTime !== undefined && started !== owner.startTime;
}

export function parseOwner(text: string): LockOwner | null {
  try {
    const owner = JSON.parse(text) as LockOwner;
    return typeof owner?.pid === 'number' && typeof owner.user === 'string' ? owner : null;
  } catch {
    return null;
  }
}
