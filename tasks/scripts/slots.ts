// Shell for blue-green's slots: the program runs as two supervisor programs, <name>-blue and <name>-green (one
// file holds both), each in its own release's folder. A new release starts in the idle slot and is checked on
// that slot's own socket; traffic moves when run/live.sock is swapped to it (nginx connects through the link);
// the old slot is then stopped (SIGTERM; supervisor waits drainSeconds) and loses its autostart.
import type { Cutover, Services } from '../config/types.js';
import { layout, releaseFiles } from '../lib/paths.js';
import { raw, script, sh, type Shell } from '../lib/sh.js';
import type { SlotState } from '../release/state.js';
import type { Slot } from '../release/templates.js';
import { type HealthCheck, healthCheckScript } from './health.js';
import { helperCommand } from './services-helper.js';
import { slotPort } from './upstream.js';

export type BlueGreen = Extract<Cutover, { strategy: 'blue-green' }>;

export const otherSlot = (slot: Slot): Slot => (slot === 'blue' ? 'green' : 'blue');

/** The supervisor program of a slot: <services.supervisor.name>-<slot>. */
export function slotProgram(services: Services, slot: Slot): string {
  return `${services.supervisor?.name}-${slot}`;
}

/**
 * A slot's check, on its own socket: healthcheck.url's path and query, fetched through <deployTo>/run/<slot>.sock;
 * or (listen 'port') on 127.0.0.1:<the slot's port>.
 */
export function slotCheck(check: HealthCheck, deployTo: string, slot: Slot, port?: number): HealthCheck {
  const url = new URL(check.url);
  if (port) return { ...check, url: `http://127.0.0.1:${port}${url.pathname}${url.search}` };
  return { ...check, url: `http://localhost${url.pathname}${url.search}`, socket: layout(deployTo).slotSocket(slot) };
}

/** The slot's port with listen 'port'; undefined with listen 'socket'. */
export function portOf(cutover: BlueGreen, slot: Slot): number | undefined {
  return cutover.listen === 'port' && cutover.ports ? slotPort(cutover.ports, slot) : undefined;
}

/** run/state.json, written whole to a temp file and renamed over the old one: never seen half written. */
export function writeSlotStateScript(deployTo: string, state: SlotState): Shell {
  const p = layout(deployTo);
  const next = `${p.slotState}.new`;
  return script(sh`printf '%s\\n' ${JSON.stringify(state)} > ${next}`, sh`mv -f ${next} ${p.slotState}`);
}

/** What goes into the programs file: each slot's section from its release, autostart on the live one only. */
export interface SlotSection {
  slot: Slot;
  release: string;
  autostart: boolean;
}

const sudo = (services: Services) => raw(services.sudo ? `${services.sudo} ` : '');

/**
 * Composes the programs file from the slots' rendered sections (a release renders supervisor.<slot>.conf for
 * each slot), installs it atomically where services.supervisor.program says, and (`reread`) has supervisor
 * read it. Private while composed (umask 077): a section may hold a value from .env.
 */
function installProgramsScript(services: Services, deployTo: string, sections: SlotSection[], reread: boolean): Shell {
  const p = layout(deployTo);
  const target = services.supervisor?.program ?? '';
  const s = sudo(services);
  const rendered = (x: SlotSection) => releaseFiles(p.release(x.release)).rendered(`supervisor.${x.slot}.conf`);
  return script(
    ...sections.map((x) =>
      script(
        sh`if [ ! -f ${rendered(x)} ]; then`,
        sh`  echo ${`release ${x.release} has no .slipway/supervisor.${x.slot}.conf (from supervisor.conf.hbs)`} >&2`,
        sh`  exit 1`,
        sh`fi`,
      ),
    ),
    sh`( umask 077`,
    ...sections.map((x, i) =>
      script(
        i ? sh`  echo` : undefined,
        sh`  sed -e ${`s/^autostart[ \t]*=.*/autostart=${x.autostart}/`} ${rendered(x)}`,
      ),
    ),
    sh`) > ${p.programsNext}`,
    sh`${s}rm -f ${`${target}.slipway-new`}`,
    sh`${s}cp ${p.programsNext} ${`${target}.slipway-new`}`,
    sh`${s}mv -f ${`${target}.slipway-new`} ${target}`,
    sh`rm -f ${p.programsNext}`,
    reread ? sh`${s}${raw(services.supervisor?.ctl ?? '')} reread >/dev/null` : undefined,
  );
}

export interface StartSlot {
  slot: Slot;
  release: string;
  /** The release the live slot runs (its section is kept as it is), or null on a first deploy. */
  live: SlotSection | null;
  check: HealthCheck;
  /** The state to record before anything starts (the operation under way). */
  state: SlotState;
}

/**
 * Starts the idle slot on the release, beside the live one, and checks it on its own socket: `update` names
 * that program only (a bare update would restart the live one too), then the health check (answers in a
 * row from one RUNNING process). Prints `@@healthy …`; on failure supervisor's state and the slot's stderr.
 */
export function startSlotScript(services: Services, deployTo: string, start: StartSlot): Shell {
  const ctl = sh`${sudo(services)}${raw(services.supervisor?.ctl ?? '')}`;
  const program = slotProgram(services, start.slot);
  const sections: SlotSection[] = [{ slot: start.slot, release: start.release, autostart: true }];
  if (start.live) sections.push(start.live);
  return script(
    sh`set -e`,
    sh`mkdir -p ${layout(deployTo).run}`,
    writeSlotStateScript(deployTo, start.state),
    services.helper
      ? // The helper reads the release's section as the deploy user, checks it, keeps the live slot's as installed.
        helperCommand(services, 'slot-start', start.slot, start.release)
      : script(
          installProgramsScript(services, deployTo, sections, true),
          // update (re)starts the program when its section changed (autostart); when it had not (a run killed
          // after stopping it), it is started here. The health check judges either way.
          sh`updated=$(${ctl} update ${program} 2>&1) || true`,
          sh`if [ -z "$updated" ]; then`,
          sh`  ${ctl} start ${program} >/dev/null 2>&1 || true`,
          sh`fi`,
        ),
    sh`( ${healthCheckScript(start.check, services, start.slot)} )`,
  );
}

/**
 * Moves traffic to the slot: run/live.sock, the link nginx connects through, renamed over by one pointing
 * at <slot>.sock. The kernel resolves the link on every new connection: no nginx reload, no client
 * connection reset. nginx is reloaded only when its site changed (a first blue-green deploy).
 */
export function moveTrafficScript(deployTo: string, slot: Slot, state: SlotState, reload: Shell | undefined): Shell {
  const p = layout(deployTo);
  return script(
    sh`set -e`,
    sh`ln -sfn ${`${slot}.sock`} ${p.liveSocketNext}`,
    sh`mv -T ${p.liveSocketNext} ${p.liveSocket}`,
    writeSlotStateScript(deployTo, state),
    reload,
  );
}

export interface StopSlot {
  slot: Slot;
  /** The release the stopped slot ran (its section kept, autostart=false), or null to drop its section. */
  release: string | null;
  live: SlotSection | null;
  state: SlotState;
}

/**
 * Stops a slot: supervisor sends SIGTERM and waits up to stopwaitsecs (≥ drainSeconds) while the program
 * finishes its in-flight requests; then its section loses autostart in the file, so that after a reboot
 * only the live slot starts. supervisord reads that at its start; the running one learns it at the next
 * start-slot's reread (its `update` names only the slot it starts), so the stop is one supervisorctl call.
 */
export function stopSlotScript(services: Services, deployTo: string, stop: StopSlot): Shell {
  const ctl = sh`${sudo(services)}${raw(services.supervisor?.ctl ?? '')}`;
  const program = slotProgram(services, stop.slot);
  const sections: SlotSection[] = [];
  if (stop.release) sections.push({ slot: stop.slot, release: stop.release, autostart: false });
  if (stop.live) sections.push(stop.live);
  return script(
    sh`set -e`,
    services.helper
      ? helperCommand(services, 'slot-stop', stop.slot)
      : script(
          sh`${ctl} stop ${program} >/dev/null 2>&1 || true`,
          installProgramsScript(services, deployTo, sections, false),
        ),
    writeSlotStateScript(deployTo, stop.state),
  );
}

/** Exits 0 printing `@@live` when traffic goes to the slot: a failed run's undo must then leave it alone. */
export function unlessLiveScript(deployTo: string, slot: Slot): Shell {
  const p = layout(deployTo);
  return script(
    sh`if [ "$(readlink ${p.liveSocket} 2>/dev/null)" = ${`${slot}.sock`} ]; then`,
    sh`  echo @@live`,
    sh`  exit 0`,
    sh`fi`,
  );
}

/**
 * A failed run's undo on a host its move-traffic reached (a switch, or move-traffic, failing on another host):
 * if traffic goes to `slot`, `back` moves it to the old slot, still running, and `@@moved-back` is printed;
 * exit status `back`'s if it fails. listen 'port' (`port`): run/upstream.conf names the slot; else run/live.sock.
 */
export function backIfLiveScript(deployTo: string, slot: Slot, port: boolean, back: Shell): Shell {
  const p = layout(deployTo);
  const on = port
    ? sh`[ "$(head -n 1 ${p.upstream} 2>/dev/null)" = ${`# slot ${slot}`} ]`
    : sh`[ "$(readlink ${p.liveSocket} 2>/dev/null)" = ${`${slot}.sock`} ]`;
  return script(
    sh`if ${on}; then`,
    sh`  ( ${back} )`,
    sh`  back_rc=$?`,
    sh`  if [ "$back_rc" -ne 0 ]; then exit "$back_rc"; fi`,
    sh`  echo @@moved-back`,
    sh`fi`,
  );
}
