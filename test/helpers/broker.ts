// The keepConnections broker as tests see it: each test gives the CLI its own TMPDIR, so its own
// broker, found by the pid file beside its socket and stopped by that PID.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { pidAlive } from '../../tasks/lock/owner.js';

export const brokerDirOf = (tmp: string) => path.join(tmp, `slipway-${process.getuid!()}`);

/** The broker of a run with XDG_RUNTIME_DIR set lives here instead. */
export const xdgBrokerDirOf = (runtimeDir: string) => path.join(runtimeDir, 'slipway');

/** The pid of the broker of this TMPDIR (or in the broker directory `dir`). */
export function brokerPid(tmp: string, dir = brokerDirOf(tmp)): number | null {
  const file = path.join(dir, 'broker.pid');
  return existsSync(file) ? Number(readFileSync(file, 'utf8')) : null;
}

/** The broker's pid once it listens: a run starts it without waiting for it. */
export async function waitForBroker(tmp: string, dir = brokerDirOf(tmp)): Promise<number | null> {
  for (let i = 0; i < 200 && brokerPid(tmp, dir) === null; i++) await new Promise((r) => setTimeout(r, 50));
  return brokerPid(tmp, dir);
}

/** Kills the broker of this TMPDIR (and of the broker directories given) if one runs, and removes the TMPDIR. */
export function stopBroker(tmp: string, ...dirs: string[]): void {
  for (const dir of [brokerDirOf(tmp), ...dirs]) {
    const pid = brokerPid(tmp, dir);
    if (pid && pidAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  rmSync(tmp, { recursive: true, force: true });
}
