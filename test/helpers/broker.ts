// The keepConnections broker as tests see it: each test gives the CLI its own TMPDIR, so its own
// broker, found by the pid file beside its socket and stopped by that PID.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { pidAlive } from '../../tasks/core/host.js';

export const brokerDirOf = (tmp: string) => path.join(tmp, `slipway-${process.getuid!()}`);

export function brokerPid(tmp: string): number | null {
  const file = path.join(brokerDirOf(tmp), 'broker.pid');
  return existsSync(file) ? Number(readFileSync(file, 'utf8')) : null;
}

/** The broker's pid once it listens: a run starts it without waiting for it. */
export async function waitForBroker(tmp: string): Promise<number | null> {
  for (let i = 0; i < 200 && brokerPid(tmp) === null; i++) await new Promise((r) => setTimeout(r, 50));
  return brokerPid(tmp);
}

/** Kills the broker of this TMPDIR if one runs, and removes the TMPDIR. */
export function stopBroker(tmp: string): void {
  const pid = brokerPid(tmp);
  if (pid && pidAlive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
}
