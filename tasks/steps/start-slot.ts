// Step (blue-green): start the release in the idle slot, beside the live one, and check it on its own socket.
import type { HostRun, StepOutcome } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import type { SlotState } from '../release/state.js';
import { checkFor, healthyIn } from '../scripts/health.js';
import { otherSlot, portOf, slotCheck, slotProgram, startSlotScript } from '../scripts/slots.js';

/** A host's slots before its first blue-green deploy. */
export const NO_SLOTS: SlotState = { live: null, blue: null, green: null, operation: null };

/**
 * Starts the target release (the same on every host, or per host) in the slot traffic is not on (blue on a first deploy) and waits until it answers the
 * health check on that slot's socket: one command per host. Every host's new slot is healthy before any
 * host moves traffic (move-traffic runs after this step succeeded everywhere). A slot that does not start or
 * fails its check fails the step saying why; the run's undo stops it (see cleanup).
 */
export function startSlot(run: TaskRun, target: string | ((h: HostRun) => string), action: 'deploy' | 'rollback') {
  return async (h: HostRun): Promise<StepOutcome> => {
    const cutover = run.config.cutover;
    const services = run.config.services;
    const check = run.config.healthcheck;
    if (cutover.strategy !== 'blue-green' || !services || !check) return { skipped: 'strategy restart' };
    const id = typeof target === 'string' ? target : target(h);
    const slots = h.state.slots ?? NO_SLOTS;
    const live = slots.live;
    const liveRelease = live ? slots[live] : null;
    if (live && liveRelease === id) return { skipped: `blue-green: ${id} is live in ${live} already` };
    const slot = live ? otherSlot(live) : 'blue';
    const from = live && liveRelease ? { slot: live, release: liveRelease } : null;
    const at = new Date().toISOString();
    const state: SlotState = { ...slots, [slot]: id, operation: { action, release: id, slot, step: 'start-slot', at } };
    h.report.slot = { started: slot, release: id, from };
    const program = slotProgram(services, slot);
    const command = startSlotScript(services, h.paths.root, {
      slot,
      release: id,
      live: from && { ...from, autostart: true },
      check: slotCheck(checkFor(check, id), h.paths.root, slot, portOf(cutover, slot)),
      state,
    });
    try {
      const output = await run.exec(h, 'start-slot', command);
      h.state.slots = state;
      return run.tell(
        `${program} on ${id}; ${healthyIn(output)}`,
        `start ${program} on ${id} and check it on ${portOf(cutover, slot) ?? h.paths.slotSocket(slot)}`,
      );
    } catch (error) {
      const stays = from ? `traffic stayed on ${slotProgram(services, from.slot)} (${from.release})` : 'no traffic';
      const why = `${program} on ${id} did not come up healthy, ${stays}:\n${(error as Error).message}`;
      h.report.slot.failed = why;
      throw new Error(why);
    }
  };
}
