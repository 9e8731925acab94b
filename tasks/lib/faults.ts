// Test-only fault injection at step boundaries, so fault tests are driven by the tool's own state
// rather than by sleeping. SLIPWAY_FAULT="kill:after:upload" SIGKILLs the process right after the
// upload step; "pause:before:switch" prints "@@paused before:switch" on stderr and waits there, for
// a signal or until the file named by SLIPWAY_FAULT_RESUME exists. Unset in normal use: does nothing.
import { existsSync } from 'node:fs';

export async function faultPoint(when: 'before' | 'after', step: string): Promise<void> {
  const fault = process.env.SLIPWAY_FAULT;
  if (!fault) return;
  const [action, at, name] = fault.split(':');
  if (at !== when || name !== step) return;
  if (action === 'kill') process.kill(process.pid, 'SIGKILL');
  if (action === 'pause') {
    process.stderr.write(`@@paused ${when}:${step}\n`);
    const resume = process.env.SLIPWAY_FAULT_RESUME;
    // The timer also keeps the event loop alive: a bare pending promise would let node exit with 0.
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (resume && existsSync(resume)) {
          clearInterval(timer);
          resolve();
        }
      }, 50);
    });
  }
}
