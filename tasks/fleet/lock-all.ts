// The deploy lock on every host, all or nothing: if any host's lock is held, none is kept and the owner is named.
import type { HeldLock, Host } from '../hosts/host.js';
import { ConfigError, SlipwayError } from '../lib/errors.js';
import type { Shell } from '../lib/sh.js';
import { LockHeld, lockOwner } from '../lock/owner.js';

export class LockFailed extends SlipwayError {}

/**
 * `then` (e.g. reading the host's state) runs on each host in the same round trip as its lock.
 * The first host's lock is taken before the others: of runs started at the same moment on the same
 * hosts, the one that gets it is the only one that goes on. Taking all at once, each run could get
 * some hosts and every run would fail.
 */
export async function lockAll(hosts: Host[], task: string, then?: (host: Host) => Shell): Promise<Map<Host, HeldLock>> {
  const owner = lockOwner(task);
  const take = (h: Host) => h.lock(owner, then?.(h));
  const [first, ...others] = hosts;
  const settled = await Promise.allSettled([take(first)]);
  if (settled[0].status === 'fulfilled') settled.push(...(await Promise.allSettled(others.map(take))));
  const held = new Map<Host, HeldLock>();
  for (const [i, s] of settled.entries()) if (s.status === 'fulfilled') held.set(hosts[i], s.value);
  const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as Error] : []));
  if (failures.length) {
    await Promise.all([...held.values()].map((lock) => lock.release()));
    const lines = failures.map((e) => (e instanceof LockHeld ? e.message : `${(e as Error).message}`));
    // A deployTo that is not a deploy root is the config's fault (exit 2), not a failed task.
    if (failures.some((e) => e instanceof ConfigError)) throw new ConfigError(lines.join('\n'));
    throw new LockFailed(lines.join('\n'));
  }
  return held;
}
