// Who holds a deploy lock: the owner record, reading it, and whether its process is still alive here.
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { randomUUID } from 'node:crypto';
import { SlipwayError } from '../lib/errors.js';

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

export class LockHeld extends SlipwayError {
  constructor(
    readonly host: string,
    readonly owner: LockOwner | null,
  ) {
    super(
      owner
        ? `${owner.task} in progress by ${owner.user}@${owner.machine} (pid ${owner.pid}) ` +
            `since ${owner.startedAt} on ${host}; if that run is dead, \`unlock\` removes its lock`
        : `${host}: deploy lock held (owner unknown); if no run is active, \`unlock\` removes it`,
    );
  }
}

/**
 * The run's lock on a host was taken over (the run stalled past the stale limit) or broken: nothing more may
 * change there.
 */
export class LockLost extends SlipwayError {
  constructor(readonly host: string) {
    super(
      `${host}: this run no longer holds the deploy lock ` +
        '(another run took it over, or `unlock` broke it): nothing more is changed there',
    );
  }
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
  if (owner.machine !== hostname() || owner.bootId !== here.bootId || owner.pidNamespace !== here.pidNamespace)
    return false;
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

/** The owner a lock script printed: null when there is no lock, "?" everywhere when its owner file is unreadable. */
export function printedOwner(output: string): LockOwner | null {
  const text = output.trim();
  if (!text) return null;
  return parseOwner(text) ?? { user: '?', machine: '?', pid: 0, task: '?', startedAt: '?', token: '' };
}

export function lockOwner(task: string): LockOwner {
  return {
    user: userInfo().username,
    machine: hostname(),
    pid: process.pid,
    task,
    startedAt: new Date().toISOString(),
    token: randomUUID(),
    ...processIdentity(),
  };
}
