// Shell for blue-green with listen 'port': the nginx site includes run/upstream.conf, one line naming the live
// slot's port. Traffic moves when that file is renamed over by one naming the new slot's port and nginx is
// reloaded gracefully; the site adds X-Slipway-Upstream ($upstream_addr) to every answer, so the move is
// confirmed by fetching the site until answers come from the new port, before the old slot drains.
import type { Cutover, ResolvedConfig } from '../config/types.js';
import { layout } from '../lib/paths.js';
import { script, sh, type Shell } from '../lib/sh.js';
import { SLOTS, type Slot } from '../release/templates.js';

/** The port a slot listens on: cutover.ports in the order blue, green. */
export function slotPort(ports: [number, number], slot: Slot): number {
  return ports[SLOTS.indexOf(slot)];
}

/** A slot and its port: where traffic goes with listen 'port'. */
export interface SlotPort {
  slot: Slot;
  port: number;
}

/**
 * What run/upstream.conf holds: the slot it names on its first line (what inspect reads as the live slot, as
 * it reads live.sock's link in socket mode), then the upstream's one server.
 */
export const upstreamText = (to: SlotPort) => `# slot ${to.slot}\nserver 127.0.0.1:${to.port};`;

/** Writes run/upstream.conf naming the slot: a temp file renamed over the old one, never seen half written. */
export function writeUpstreamScript(deployTo: string, to: SlotPort): Shell {
  const p = layout(deployTo);
  return script(
    sh`mkdir -p ${p.run}`,
    sh`printf '%s\\n' ${upstreamText(to)} > ${`${p.upstream}.next`}`,
    sh`mv -f ${`${p.upstream}.next`} ${p.upstream}`,
  );
}

/**
 * Before a site that includes run/upstream.conf is installed (and tested by nginx -t): the file must exist.
 * A first deploy has none yet; it names blue's port, the slot a first deploy starts.
 */
export function ensureUpstreamScript(deployTo: string, port: number): Shell {
  const p = layout(deployTo);
  return script(sh`if [ ! -f ${p.upstream} ]; then`, writeUpstreamScript(deployTo, { slot: 'blue', port }), sh`fi`);
}

/** listen 'port': ensureUpstreamScript with blue's port, before the site is checked or installed; else nothing. */
export function upstreamFirstScript(cutover: Cutover, deployTo: string): Shell | undefined {
  if (cutover.strategy !== 'blue-green' || !cutover.ports) return undefined;
  return ensureUpstreamScript(deployTo, slotPort(cutover.ports, 'blue'));
}

/**
 * Where the host reaches its own site: vars.listen as the template uses it (a port, or address:port; a
 * wildcard address is reached on 127.0.0.1), 80 without it; the Host header is serverName.
 */
export function siteUrl(config: Pick<ResolvedConfig, 'vars'>, path: string): string {
  const listen = String(config.vars.listen ?? '80').split(/\s+/)[0];
  const m = /^(?:(.*):)?(\d+)$/.exec(listen);
  const host = !m?.[1] || m[1] === '*' || m[1] === '0.0.0.0' || m[1] === '[::]' ? '127.0.0.1' : m[1];
  return `http://${host}:${m?.[2] ?? 80}${path}`;
}

export interface ConfirmMove {
  url: string;
  serverName: string;
  port: number;
  /** How long the site may keep answering from another port after the reload. */
  seconds: number;
}

/**
 * Fetches the site (a new connection each time) every 0.1 s until an answer's X-Slipway-Upstream names the
 * port: nginx's new workers took over. Sets `confirmed` to the tries it took, or leaves it empty and says in
 * `seen` what the last answer named (the caller moves traffic back). Does not exit.
 */
export function confirmUpstreamScript(c: ConfirmMove): Shell {
  return script(
    sh`want=${`127.0.0.1:${c.port}`} seen= tries=0 confirmed=`,
    sh`end=$(( $(date +%s) + ${Math.ceil(c.seconds)} ))`,
    sh`while :; do`,
    sh`  tries=$((tries + 1))`,
    sh`  seen=$(curl -s -o /dev/null -D - --max-time 2 -H ${`Host: ${c.serverName}`} ${c.url} 2>/dev/null \\`,
    sh`    | tr -d '\\r' | awk 'tolower($1) == "x-slipway-upstream:" { print $2 }') || true`,
    sh`  if [ "$seen" = "$want" ]; then confirmed=$tries; break; fi`,
    sh`  if [ "$(date +%s)" -ge "$end" ]; then break; fi`,
    sh`  sleep 0.1`,
    sh`done`,
    sh`[ -n "$seen" ] || seen='no X-Slipway-Upstream header'`,
  );
}

export interface MoveUpstream {
  to: SlotPort;
  /** The live slot, put back when the reload is not confirmed; null on a first deploy. */
  back: SlotPort | null;
  reload: Shell;
  confirm: Omit<ConfirmMove, 'port'>;
}

/**
 * Moves traffic to the slot's port: run/upstream.conf rewritten, nginx reloaded gracefully, and the site
 * fetched until its answers come from that port. Then `state` (the slot live) is recorded. When nginx does
 * not confirm, the old port is written back and nginx reloaded again: traffic is not moved; exit 1.
 */
export function moveUpstreamScript(deployTo: string, move: MoveUpstream, state: Shell): Shell {
  const c = move.confirm;
  return script(
    sh`set -e`,
    writeUpstreamScript(deployTo, move.to),
    move.reload,
    confirmUpstreamScript({ ...c, port: move.to.port }),
    sh`if [ -z "$confirmed" ]; then`,
    move.back === null ? undefined : script(writeUpstreamScript(deployTo, move.back), move.reload),
    sh`  echo ${`nginx did not move traffic to port ${move.to.port} within ${c.seconds} s of its reload (last answer from: `}"$seen)" >&2`,
    sh`  exit 1`,
    sh`fi`,
    sh`echo "@@confirmed $confirmed"`,
    state,
  );
}

/** Exits 0 printing `@@live` when run/upstream.conf names the slot: a failed run's undo leaves it alone. */
export function unlessLivePortScript(deployTo: string, slot: Slot): Shell {
  const p = layout(deployTo);
  return script(
    sh`if [ "$(head -n 1 ${p.upstream} 2>/dev/null)" = ${`# slot ${slot}`} ]; then`,
    sh`  echo @@live`,
    sh`  exit 0`,
    sh`fi`,
  );
}
