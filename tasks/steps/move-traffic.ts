// Step (blue-green): move traffic to the new slot, once it is healthy on every host; and the way back.
import type { HostRun, StepOutcome } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import { raw, script, sh, type Shell } from '../lib/sh.js';
import type { SlotState } from '../release/state.js';
import type { Slot } from '../release/templates.js';
import { helperCommand } from '../scripts/services-helper.js';
import { commitConfigsScript } from '../scripts/services.js';
import { checkFor } from '../scripts/health.js';
import {
  type BlueGreen,
  moveTrafficScript,
  portOf,
  slotCheck,
  slotProgram,
  startSlotScript,
  stopSlotScript,
  writeSlotStateScript,
} from '../scripts/slots.js';
import { moveUpstreamScript, type SlotPort, siteUrl } from '../scripts/upstream.js';
import { switchScript } from '../scripts/switch.js';
import { NO_SLOTS } from './start-slot.js';

/** nginx's graceful reload, as the deploy runs it (the helper's `reload`, or services.sudo + nginx.reload). */
function nginxReload(run: TaskRun): Shell | undefined {
  const services = run.config.services;
  if (!services?.nginx) return undefined;
  if (services.helper) return helperCommand(services, 'reload');
  return sh`${raw(services.sudo ? `${services.sudo} ` : '')}${raw(services.nginx.reload)}`;
}

/**
 * Swaps run/live.sock to the slot start-slot started (nginx reloads only when its site changed), records
 * the slot live, and commits the configs installed for the release.
 */
export function moveTraffic(run: TaskRun) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const services = run.config.services;
    if (run.config.cutover.strategy !== 'blue-green' || !services) return { skipped: 'strategy restart' };
    const started = h.report.slot;
    if (!started) return { skipped: 'blue-green: no slot started on this host' };
    const nginxChanged = run.options.dryRun || (h.report.configsChanged ?? []).includes('nginx');
    const slots = h.state.slots ?? NO_SLOTS;
    const operation = started.from && slots.operation ? { ...slots.operation, step: 'drain-slot' } : null;
    const state: SlotState = { ...slots, live: started.started, [started.started]: started.release, operation };
    const port = portOf(run.config.cutover, started.started);
    if (port) return moveUpstream(run, h, port, state);
    const reload = nginxChanged ? nginxReload(run) : undefined;
    const command = script(
      moveTrafficScript(h.paths.root, started.started, state, reload),
      commitConfigsScript(services, h.paths.root),
    );
    await run.exec(h, 'move-traffic', command);
    started.moved = true;
    h.state.slots = state;
    const to = `${slotProgram(services, started.started)} (${started.release})`;
    const reloaded = reload ? '; reloaded nginx (its site changed)' : '';
    return run.tell(
      `live.sock → ${to}${reloaded}`,
      `point live.sock at ${to}${reload ? ', reload nginx if its site changed' : ''}`,
    );
  };
}

/** How long nginx may go on answering from the old port after its reload before the move counts as failed. */
const CONFIRM_SECONDS = 10;

/** listen 'port': run/upstream.conf names the slot's port, nginx reloads, the site confirms (see upstream.ts). */
function upstreamMove(run: TaskRun, h: HostRun, to: SlotPort, back: SlotPort | null, state: SlotState): Shell {
  const check = new URL(run.config.healthcheck?.url ?? 'http://localhost/');
  const confirm = {
    url: siteUrl(run.config, check.pathname),
    serverName: run.config.serverName,
    seconds: CONFIRM_SECONDS,
  };
  const reload = nginxReload(run) ?? sh`false`;
  return moveUpstreamScript(h.paths.root, { to, back, reload, confirm }, writeSlotStateScript(h.paths.root, state));
}

async function moveUpstream(run: TaskRun, h: HostRun, port: number, state: SlotState): Promise<StepOutcome> {
  const services = run.config.services!;
  const started = h.report.slot!;
  const cutover = run.config.cutover;
  const from = started.from && cutover.strategy === 'blue-green' ? portOf(cutover, started.from.slot) : undefined;
  const back = started.from && from ? { slot: started.from.slot, port: from } : null;
  const to = { slot: started.started, port };
  const command = script(upstreamMove(run, h, to, back, state), commitConfigsScript(services, h.paths.root));
  let output: string;
  try {
    output = await run.exec(h, 'move-traffic', command);
  } catch (error) {
    started.failed = `traffic did not move to ${slotProgram(services, started.started)}:\n${(error as Error).message}`;
    throw new Error(started.failed);
  }
  started.moved = true;
  h.state.slots = state;
  const program = `${slotProgram(services, started.started)} (${started.release})`;
  const tries = /^@@confirmed (\d+)$/m.exec(output)?.[1];
  return run.tell(
    `upstream → ${program} on port ${port}; nginx reloaded, confirmed${tries ? ` after ${tries} fetch(es)` : ''}`,
    `point run/upstream.conf at ${program} on port ${port}, reload nginx, wait until the site answers from it`,
  );
}

/**
 * A deploy failing after traffic moved (an afterSwitch hook, the bake): traffic back to the old slot (still
 * running: the drain comes last), `current` back, the new slot stopped. `@@switched` marks the point from which
 * the old release is live again (see wentBack). A host of an earlier wave, whose old slot was drained since,
 * starts it again on the old release and checks it there first (see restartOldSlot).
 */
export function backToOldSlotScript(run: TaskRun, h: HostRun, previous: string, logLine: string): Shell | undefined {
  const services = run.config.services;
  const started = h.report.slot;
  if (run.config.cutover.strategy !== 'blue-green' || !services || !started?.from) return undefined;
  const from = started.from;
  const slots = h.state.slots ?? NO_SLOTS;
  const state: SlotState = { ...slots, live: from.slot, operation: null };
  return script(
    started.drained ? restartOldSlot(run, h, from) : undefined,
    trafficBackScript(run, h, from.slot, state),
    switchScript(h.paths.root, previous, logLine),
    sh`echo @@switched`,
    stopSlotScript(services, h.paths.root, {
      slot: started.started,
      release: started.release,
      live: { ...from, autostart: true },
      state,
    }),
  );
}

/**
 * The way back on a host whose old slot was drained (a later wave failed): the old release started again in its
 * slot, beside the live new one, and health-checked there as start-slot does, before any traffic moves back.
 */
function restartOldSlot(run: TaskRun, h: HostRun, from: { slot: Slot; release: string }): Shell {
  const services = run.config.services!;
  const started = h.report.slot!;
  const cutover = run.config.cutover as BlueGreen;
  const check = run.config.healthcheck;
  const slots = h.state.slots ?? NO_SLOTS;
  const at = new Date().toISOString();
  const operation = { action: 'rollback' as const, release: from.release, slot: from.slot, step: 'start-slot', at };
  if (!check) return sh`echo ${`blue-green needs a healthcheck to start ${from.slot} again`} >&2; exit 1`;
  return sh`( ${startSlotScript(services, h.paths.root, {
    slot: from.slot,
    release: from.release,
    live: { slot: started.started, release: started.release, autostart: true },
    check: slotCheck(checkFor(check, from.release), h.paths.root, from.slot, portOf(cutover, from.slot)),
    state: { ...slots, [from.slot]: from.release, operation },
  })} ) || exit 1`;
}

/**
 * Traffic back to the slot that was live before this run (still running: the drain comes last), recording
 * `state`: run/live.sock renamed back, or (listen 'port') run/upstream.conf rewritten, nginx reloaded, confirmed.
 */
export function trafficBackScript(run: TaskRun, h: HostRun, slot: Slot, state: SlotState): Shell {
  const port = portOf(run.config.cutover as BlueGreen, slot);
  return port
    ? upstreamMove(run, h, { slot, port }, null, state)
    : moveTrafficScript(h.paths.root, slot, state, undefined);
}
