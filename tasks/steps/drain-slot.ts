// Step (blue-green): drain the slot traffic left and stop it.
import type { HostRun, StepOutcome } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import type { SlotState } from '../release/state.js';
import { slotProgram, stopSlotScript } from '../scripts/slots.js';
import { NO_SLOTS } from './start-slot.js';

/**
 * No new connection reaches the old slot since move-traffic; supervisor sends it SIGTERM and waits up to
 * drainSeconds (stopwaitsecs) while it finishes its in-flight requests, then it loses its autostart.
 */
export function drainSlot(run: TaskRun) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const services = run.config.services;
    if (run.config.cutover.strategy !== 'blue-green' || !services) return { skipped: 'strategy restart' };
    const started = h.report.slot;
    if (!started?.moved) return { skipped: 'blue-green: traffic did not move on this host' };
    if (!started.from) return { skipped: 'blue-green: no slot was live before' };
    const state: SlotState = { ...(h.state.slots ?? NO_SLOTS), operation: null };
    const command = stopSlotScript(services, h.paths.root, {
      slot: started.from.slot,
      release: started.from.release,
      live: { slot: started.started, release: started.release, autostart: true },
      state,
    });
    await run.exec(h, 'drain-slot', command);
    started.drained = true;
    h.state.slots = state;
    const old = `${slotProgram(services, started.from.slot)} (${started.from.release})`;
    return run.tell(`drained and stopped ${old}`, `drain and stop ${old}`);
  };
}
