// The deploy lock on every host, all or nothing: if any host's lock is held, none is kept and the owner is named.
import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import type { HeldLock, Host, LockOwner } from './core/host.js';
import { LockHeld } from './core/host.js';
import type { Shell } from './core/sh.js';

export function lockOwner(task: string): LockOwner {
  return { user: userInfo().username, machine: hostname(), pid: process.pid, task, startedAt: new Date().toISOString(), token: randomUUID() };
}

export class LockFailed extends Error {}

/** `then` (e.g. reading the host's state) runs on each host in the same round trip as its lock. */
export async function lockAll(hosts: Host[], task: string, then?: (host: Host) => Shell): Promise<Map<Host, HeldLock>> {
  const owner = lockOwner(task);
  const settled = await Promise.allSettled(hosts.map((h) => h.lock(owner, then?.(h))));
  const held = new Map<Host, HeldLock>();
  settled.forEach((s, i) => s.status === 'fulfilled' && held.set(hosts[i], s.value));
  const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as Error] : []));
  if (failures.length) {
    await Promise.all([...held.values()].map((lock) => lock.release()));
    const lines = failures.map((e) => (e instanceof LockHeld ? e.message : `${(e as Error).message}`));
    throw new LockFailed(lines.join('\n'));
  }
  return held;
}
