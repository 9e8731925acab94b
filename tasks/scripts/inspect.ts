// The one read of a host's state (releases, live link, metadata, environments) and its parser.
import { COMPLETE, layout, RELEASE_META, releaseOfCurrent } from '../lib/paths.js';
import { sh } from '../lib/sh.js';
import type { ReleaseMeta } from '../release/metadata.js';
import { isReleaseId } from '../release/rules.js';
import type { HostState, SlotState } from '../release/state.js';
import type { Slot } from '../release/templates.js';
import { manifestFiles } from './delta.js';

const MANIFEST_SHA = manifestFiles('.').sha256.slice(2);

function parseSlots(json: string): Partial<SlotState> | undefined {
  try {
    const value = JSON.parse(json) as Partial<SlotState>;
    const id = (v: unknown) => (typeof v === 'string' && isReleaseId(v) ? v : null);
    return { blue: id(value.blue), green: id(value.green), operation: value.operation ?? null };
  } catch {
    // A torn file cannot be: it is written by rename. A hand-edited one: the slots are read as empty.
    return undefined;
  }
}

const probeRuntime = {
  node: sh`echo "@@node $(node --version 2>/dev/null)"`,
  python: sh`echo "@@python $(python3 --version 2>&1)"`,
  none: sh`true`,
};

/**
 * One round trip that reads everything a task decides from. It runs on every host of every task, so
 * it uses bash builtins where it can: each program it starts costs a few ms of the host's CPU, and a
 * fleet of hosts on few cores pays them all. Only the runtime the dependencies need is probed.
 */
export function inspectScript(deployTo: string, runtime: 'node' | 'python' | 'none') {
  const p = layout(deployTo);
  return sh`D=${p.root}
printf '@@now %(%s)T\n' -1
if [ -L ${p.current} ]; then echo "@@current $(readlink ${p.current})"; fi
if [ -d ${p.releases} ]; then for r in ${p.releases}/*; do
  [ -d "$r" ] || continue; n=\${r##*/}; echo "@@release $n"
  if [ -f "$r"/${RELEASE_META} ]; then
    m=
    IFS= read -r -d '' m < "$r"/${RELEASE_META} || true
    m=\${m//$'\n'/}
    printf '@@meta %s %s\n' "$n" "\${m:0:8192}"
  fi
  if [ -f "$r"/${MANIFEST_SHA} ]; then s=; read -r s < "$r"/${MANIFEST_SHA} || true; echo "@@manifest $n $s"; fi
done; fi
if [ -d ${p.envs} ]; then for e in ${p.envs}/*; do [ -e "$e"/${COMPLETE} ] && echo "@@env \${e##*/}"; done; fi
if [ -f ${p.slotState} ]; then
  m=
  IFS= read -r -d '' m < ${p.slotState} || true
  m=\${m//$'\n'/}
  printf '@@slots %s\n' "\${m:0:4096}"
fi
if [ -d ${p.current}/.slipway ]; then (cd ${p.current}/.slipway && sha256sum -- *.conf 2>/dev/null) | \
  while read -r s f; do echo "@@rendered $s $f"; done; fi
if [ -L ${p.liveSocket} ]; then echo "@@liveslot $(readlink ${p.liveSocket})"; fi
if [ -f ${p.upstream} ]; then IFS= read -r m < ${p.upstream} || true; echo "@@liveslot \${m#'# slot '}"; fi
${probeRuntime[runtime]}
echo "@@platform $OSTYPE $HOSTTYPE"
echo "@@nginx $(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; })"
d=$D; while [ ! -e "$d" ]; do d=\${d%/*}; d=\${d:-/}; done; [ -w "$d" ] && echo "@@writable yes"
true`;
}

export function parseInspection(output: string): HostState {
  const state: HostState = {
    now: 0,
    live: null,
    releases: [],
    meta: {},
    envs: [],
    runtime: { node: '', python: '', platform: '' },
    nginx: null,
    writable: false,
  };
  let slots: Partial<SlotState> | undefined;
  let liveSlot: Slot | undefined;
  for (const line of output.split('\n')) {
    const match = /^@@(\w+) ?(.*)$/.exec(line);
    if (!match) continue;
    const [, key, value] = match;
    if (key === 'now') state.now = Number(value);
    else if (key === 'current') state.live = releaseOfCurrent(value);
    else if (key === 'release' && isReleaseId(value)) state.releases.push(value);
    else if (key === 'meta') {
      const space = value.indexOf(' ');
      try {
        state.meta[value.slice(0, space)] = JSON.parse(value.slice(space + 1)) as ReleaseMeta;
      } catch {
        // A torn or hand-edited metadata file: the release is still listed, just without details.
      }
    } else if (key === 'env') state.envs.push(value);
    else if (key === 'node' || key === 'python' || key === 'platform') state.runtime[key] = value.trim();
    else if (key === 'nginx') state.nginx = value.trim() || null;
    else if (key === 'writable') state.writable = true;
    else if (key === 'slots') slots = parseSlots(value);
    else if (key === 'liveslot') liveSlot = /^(blue|green)(\.sock)?$/.exec(value.trim())?.[1] as Slot | undefined;
    else if (key === 'rendered') {
      const [sha, name] = value.split(' ');
      if (/^[0-9a-f]{64}$/.test(sha) && /^[\w.-]+\.conf$/.test(name ?? ''))
        state.rendered = { ...state.rendered, [name]: sha };
    } else if (key === 'manifest') {
      const [id, sha] = value.split(' ');
      if (isReleaseId(id) && /^[0-9a-f]{64}$/.test(sha ?? '')) state.manifests = { ...state.manifests, [id]: sha };
    }
  }
  state.releases.sort();
  if (slots || liveSlot) {
    state.slots = { blue: null, green: null, operation: null, ...slots, live: liveSlot ?? null };
    // What users get is the live slot's release, whatever `current` says (a run killed between the two).
    const serving = liveSlot && state.slots[liveSlot];
    if (serving && state.releases.includes(serving)) state.live = serving;
  }
  return state;
}
