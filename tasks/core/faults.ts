// Test-only fault injection at step boundaries, so fault tests are driven by the tool's own state
// rather than by sleeping. SLIPWAY_FAULT="kill:after:upload" SIGKILLs the process right after the
// upload step; "pause:before:switch" prints "@@paused before:switch" on stderr and waits there (for
// a signal). Unset in normal use: then this does nothing.
export async function faultPoint(when: 'before' | 'after', step: string): Promise<void> {
  const fault = process.env.SLIPWAY_FAULT;
  if (!fault) return;
  const [action, at, name] = fault.split(':');
  if (at !== when || name !== step) return;
  if (action === 'kill') process.kill(process.pid, 'SIGKILL');
  if (action === 'pause') {
    process.stderr.write(`@@paused ${when}:${step}\n`);
    // A timer keeps the event loop alive: a bare pending promise would let node exit with 0.
    await new Promise(() => setInterval(() => undefined, 60_000));
  }
}
