// A command held back (TaskRun.hold): when it goes, and with what, counted in round trips on in-memory hosts.
import { describe, expect, it } from 'vitest';
import type { HostConfig, ResolvedConfig } from '../../../tasks/config/types.js';
import { HostRun } from '../../../tasks/fleet/host-run.js';
import { TaskRun } from '../../../tasks/fleet/task-run.js';
import { type Host, mustRun } from '../../../tasks/hosts/host.js';
import type { Log } from '../../../tasks/lib/log.js';
import { type Shell, sh } from '../../../tasks/lib/sh.js';
import { HELD_SENT } from '../../../tasks/scripts/held.js';

/**
 * A host that runs nothing: each round trip is recorded (a command, or `unlock` with the command riding on it)
 * and answered as the scripts would be: a command holding `fail` fails, a folded one prints the marker between.
 */
function fakeHost(name: string, trips: string[]): Host {
  const answer = (command: Shell) => {
    const [held, next] = command.text.split(HELD_SENT);
    if (held.includes('fail')) return { code: 1, stdout: '', stderr: 'it failed' };
    return { code: 0, stdout: next === undefined ? 'out' : `${HELD_SENT}\n${next.trim()}-out`, stderr: '' };
  };
  const short = (command: Shell) => command.text.match(/\b(switch|restart|purge|fail)\w*/g)?.join(' + ') ?? '?';
  return {
    name,
    roles: [],
    deployTo: '/srv/app',
    address: 'memory',
    lockLost: false,
    async exec(command: Shell) {
      trips.push(short(command));
      return answer(command);
    },
    async lock(owner) {
      trips.push('lock');
      return {
        owner,
        output: '',
        async release(final?: Shell) {
          trips.push(final ? `${short(final)} + unlock` : 'unlock');
          return final ? answer(final) : undefined;
        },
      };
    },
    readLockOwner: async () => null,
    interrupt: async () => undefined,
    breakLock: async () => null,
    close: async () => undefined,
  };
}

const quiet = { step() {}, beginStep() {}, endStep() {}, line() {}, error() {}, detail() {} } as unknown as Log;
const config = { dependencies: { type: 'none' } } as unknown as ResolvedConfig;

function oneHostRun(trips: string[]) {
  const h = new HostRun({ name: 'web1', roles: [], deployTo: '/srv/app' } as unknown as HostConfig);
  h.connected(fakeHost('web1', trips));
  const options = { dryRun: false, autoRollback: true, keepFailed: false, force: false };
  return { h, run: new TaskRun(config, options, quiet, [h], [], async () => undefined) };
}

const skipped = async () => ({ skipped: 'nothing to do' });

describe('a held command (TaskRun.hold)', () => {
  it('waits through steps that send nothing, then goes on its own before the next command on its host', async () => {
    const trips: string[] = [];
    const { h, run } = oneHostRun(trips);
    await run.locked('deploy', async () => {
      run.hold(h, 'switch', sh`switch`, () => undefined);
      await run.each('after-switch', skipped);
      expect(trips).toEqual(['lock']);
      await run.each('restart', (x) => mustRun(x.host, 'restart', sh`restart`).then(() => undefined));
    });
    expect(trips).toEqual(['lock', 'switch', 'restart', 'unlock']);
  });

  it("at the block's end rides on the last queued step's command and the unlock: one round trip", async () => {
    const trips: string[] = [];
    const { h, run } = oneHostRun(trips);
    let purged = '';
    await run.locked('deploy', async () => {
      run.hold(h, 'switch', sh`switch`, () => undefined);
      await run.each('health', skipped);
      await run.atEnd('purge', async (x) => {
        purged = await run.exec(x, 'purge', sh`purge`);
        return undefined;
      });
    });
    expect(trips).toEqual(['lock', 'switch + purge + unlock']);
    // The queued step gets its own output, not the held command's.
    expect(purged).toBe('purge-out');
  });

  it('with nothing queued, rides on the unlock alone; and is never dropped, also when the block fails', async () => {
    const trips: string[] = [];
    const { h, run } = oneHostRun(trips);
    const failing = run.locked('deploy', async () => {
      run.hold(h, 'switch', sh`switch`, () => undefined);
      throw new Error('a step failed without sending anything');
    });
    await expect(failing).rejects.toThrow('a step failed');
    expect(trips).toEqual(['lock', 'switch + unlock']);
  });

  it('failing when sent: `failed` runs first, the command behind it never runs, and its error goes on', async () => {
    const trips: string[] = [];
    const { h, run } = oneHostRun(trips);
    const seen: string[] = [];
    const block = run.locked('deploy', async () => {
      run.hold(h, 'switch', sh`fail`, (error) => seen.push(error.message));
      await run.each('restart', (x) => mustRun(x.host, 'restart', sh`restart`).then(() => undefined));
    });
    await expect(block).rejects.toThrow(/switch failed on web1 \(exit 1\)/);
    expect(seen).toHaveLength(1);
    expect(trips).toEqual(['lock', 'fail', 'unlock']);
  });

  it("failing at the block's end: the queued step's command does not run after it, and the error is the held one's", async () => {
    const trips: string[] = [];
    const { h, run } = oneHostRun(trips);
    const seen: string[] = [];
    const block = run.locked('deploy', async () => {
      run.hold(h, 'switch', sh`fail`, (error) => seen.push(error.message));
      await run.atEnd('purge', (x) => run.exec(x, 'purge', sh`purge`).then(() => undefined));
    });
    await expect(block).rejects.toThrow(/switch failed on web1/);
    expect(seen).toHaveLength(1);
    expect(trips).toEqual(['lock', 'fail + purge + unlock']);
  });

  it('is refused outside a locked block (no unlock there to carry it)', () => {
    const { h, run } = oneHostRun([]);
    expect(() => run.hold(h, 'switch', sh`switch`, () => undefined)).toThrow(/only inside a locked block/);
  });
});
