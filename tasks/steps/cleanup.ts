// Step: when a deploy fails before its switch, remove the unfinished release and put configs back.
import type { HostRun, StepOutcome } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import { mustRun } from '../hosts/host.js';
import { script } from '../lib/sh.js';
import type { Release } from '../release/archive.js';
import { discardScript, markBadScript } from '../scripts/release.js';
import { restoreConfigsScript } from '../scripts/services.js';
import { backIfLiveScript, stopSlotScript, unlessLiveScript } from '../scripts/slots.js';
import { unlessLivePortScript } from '../scripts/upstream.js';
import { trafficBackScript } from './move-traffic.js';
import { NO_SLOTS } from './start-slot.js';

/** Undoes a failed prepare on a host. */
export function discard(run: TaskRun, release: Release) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const services = run.config.services;
    if (h.report.slot && services) return stopNewSlot(run, h, release);
    const command = script(
      services ? restoreConfigsScript(services, h.paths.root) : undefined,
      discardScript(h.paths.root, release.id, run.options.keepFailed),
    );
    const kept = await mustRun(h.host, 'cleanup', command);
    return kept.trim() ? `kept for inspection: ${kept.trim()}` : 'removed the unfinished release';
  };
}

/**
 * blue-green, once the new slot started on the host: traffic never reached it, or move-traffic got there and the
 * run then failed (a switch, or move-traffic, failing on another host): traffic goes back to the old slot, still
 * running, in the same command. Then it is stopped, the release marked bad (why: its own failure, or another
 * host's), the configs put back. Interrupted (Ctrl-C) once traffic moved, with no slot live before it, or where
 * `current` is on the new release, a slot traffic reached is left live.
 */
async function stopNewSlot(run: TaskRun, h: HostRun, release?: Release): Promise<StepOutcome> {
  const services = run.config.services!;
  const started = h.report.slot!;
  const failures = run.hosts.flatMap((o) => (o.report.slot?.failed ? [`${o.host.name}: ${o.report.slot.failed}`] : []));
  const reason = started.failed ?? (run.interrupted ? 'interrupted' : failures[0]) ?? 'the deploy failed';
  const mark = release && markBadScript(h.paths.root, release, release.envKeys.get(h.host.name) ?? null, reason);
  const slots = h.state.slots ?? NO_SLOTS;
  const cutover = run.config.cutover;
  const port = cutover.strategy === 'blue-green' && cutover.listen === 'port';
  const from = started.from;
  const state = { ...slots, [started.started]: started.release, live: from?.slot ?? null, operation: null };
  // Where `current` went to the new release and stayed (a rollback's switch on the hosts where it succeeded, or a
  // switch back that failed), traffic stays with it.
  const goesBack = from && !run.interrupted && h.report.live !== started.release;
  const back = goesBack
    ? backIfLiveScript(h.paths.root, started.started, port, trafficBackScript(run, h, from.slot, state))
    : port
      ? unlessLivePortScript(h.paths.root, started.started)
      : unlessLiveScript(h.paths.root, started.started);
  const command = script(
    back,
    stopSlotScript(services, h.paths.root, {
      slot: started.started,
      release: started.release,
      live: from && { ...from, autostart: true },
      state,
    }),
    mark?.script,
    restoreConfigsScript(services, h.paths.root),
  );
  const output = await mustRun(h.host, 'cleanup', command, mark ? { stdin: mark.stdin } : {});
  if (/^@@live$/m.test(output)) return `traffic had moved to ${started.release}: left live`;
  h.state.slots = state;
  const marked = mark ? `; ${started.release} marked bad` : '';
  if (/^@@moved-back$/m.test(output)) {
    started.moved = false;
    const old = `${from!.slot} (${from!.release})`;
    return `traffic back on ${old}; stopped the slot it started (${started.started})${marked}`;
  }
  return `stopped the slot it started (${started.started}, never served)${marked}`;
}

/** blue-green rollback's undo: the slot it started is stopped (nothing is marked: the release was good before). */
export function stopStartedSlot(run: TaskRun) {
  return async (h: HostRun): Promise<StepOutcome> => {
    if (!h.report.slot || !run.config.services) return { skipped: 'no slot started on this host' };
    return stopNewSlot(run, h);
  };
}
