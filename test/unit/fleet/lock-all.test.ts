// The all-or-nothing lock on several hosts (tasks/fleet/lock-all.ts).
import { describe, expect, it } from 'vitest';
import { LockHeld } from '../../../tasks/lock/owner.js';
import { lockAll } from '../../../tasks/fleet/lock-all.js';

const owner = {
  user: 'deployer',
  machine: 'box',
  pid: 4242,
  task: 'deploy',
  startedAt: '2026-01-01T00:00:00.000Z',
  token: 't',
};

describe('lockAll on several hosts', () => {
  // In-memory hosts, not sshd: the interleaving that made two simultaneous runs each take some
  // hosts (so both failed) is forced here, which real servers only do now and then.
  function fakeFleet(names: string[]) {
    const holders = new Map<string, string>();
    return names.map((name) => ({
      name,
      async lock(o: typeof owner) {
        // Run "a" reaches the hosts in order, run "b" in reverse: without an order, they cross.
        const delay = (o.task === 'a' ? names.indexOf(name) : names.length - names.indexOf(name)) * 10;
        await new Promise((r) => setTimeout(r, delay));
        const holder = holders.get(name);
        if (holder) throw new LockHeld(name, { ...owner, task: holder });
        holders.set(name, o.task);
        return { owner: o, output: '', release: async () => void holders.delete(name) };
      },
    }));
  }

  it('of two runs started at the same moment, exactly one gets every host and the other names it', async () => {
    const hosts = fakeFleet(['web1', 'web2', 'web3', 'web4', 'web5']) as unknown as Parameters<typeof lockAll>[0];
    const results = await Promise.allSettled([lockAll(hosts, 'a'), lockAll(hosts, 'b')]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((refused.reason as Error).message).toMatch(/^[ab] in progress by deployer@box/);
  });
});
