// Hosts of the chosen environment: selection by name and role, connection, and reading each host's state.
import type { ResolvedConfig, HostConfig } from './core/config.js';
import { ConfigError } from './core/config.js';
import type { Host } from './core/host.js';
import { mustRun } from './core/host.js';
import { LocalHost } from './core/local-host.js';
import { layout } from './core/paths.js';
import { isReleaseId } from './core/releases.js';
import { sh } from './core/sh.js';

export function selectHosts(all: HostConfig[], names?: string[], roles?: string[]): HostConfig[] {
  const known = all.map((h) => h.name);
  const unknown = (names ?? []).filter((n) => !known.includes(n));
  if (unknown.length) throw new ConfigError(`--hosts: unknown host ${unknown.map((n) => `"${n}"`).join(', ')}; hosts: ${known.join(', ')}`);
  const allRoles = new Set(all.flatMap((h) => h.roles));
  const unknownRoles = (roles ?? []).filter((r) => !allRoles.has(r));
  if (unknownRoles.length) {
    throw new ConfigError(`--roles: no host has role ${unknownRoles.map((r) => `"${r}"`).join(', ')}; roles: ${[...allRoles].join(', ') || '(none)'}`);
  }
  return all.filter((h) => (!names || names.includes(h.name)) && (!roles || h.roles.some((r) => roles.includes(r))));
}

export interface ConnectOptions {
  trustNewHosts: boolean;
  onNotice?: (text: string) => void;
}

export async function connectHosts(config: ResolvedConfig, selected: HostConfig[], options: ConnectOptions): Promise<Host[]> {
  const remote = selected.some((h) => !h.local);
  // node-ssh is only loaded when a remote host needs it: the local target starts faster.
  const ssh = remote ? await import('./core/ssh-host.js') : undefined;
  const settled = await Promise.allSettled(
    selected.map((h) => (h.local ? Promise.resolve(new LocalHost(h.name, h.deployTo, h.roles)) : ssh!.connectSshHost(h, config, options))),
  );
  const errors = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as Error] : []));
  const hosts = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  if (errors.length) {
    await Promise.all(hosts.map((h) => h.close()));
    // A bad key file or passphrase setting is the config's fault (exit 2), not the network's.
    const configErrors = errors.filter((e) => e instanceof ConfigError);
    if (configErrors.length) throw new ConfigError(configErrors.map((e) => e.message).join('\n'));
    throw new HostsUnreachable(errors.map((e) => e.message));
  }
  return hosts;
}

export class HostsUnreachable extends Error {
  constructor(readonly failures: string[]) {
    super(failures.join('\n'));
  }
}

export interface ReleaseMeta {
  id: string;
  ref: string;
  commit: string;
  deployer: string;
  deployedAt: string;
  status: 'ok' | 'bad';
  reason?: string;
  envKey?: string;
}

export interface HostState {
  /** The host's own clock, seconds since the epoch. */
  now: number;
  live: string | null;
  releases: string[];
  meta: Record<string, ReleaseMeta>;
  envs: string[];
  runtime: { node: string; python: string; platform: string };
  nginx: string | null;
  writable: boolean;
}

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
  if [ -f "$r/.slipway/release.json" ]; then m=; IFS= read -r -d '' m < "$r/.slipway/release.json" || true; m=\${m//$'\n'/}; printf '@@meta %s %s\n' "$n" "\${m:0:8192}"; fi
done; fi
if [ -d ${p.envs} ]; then for e in ${p.envs}/*; do [ -e "$e/.complete" ] && echo "@@env \${e##*/}"; done; fi
${runtime === 'node' ? sh`echo "@@node $(node --version 2>/dev/null)"` : runtime === 'python' ? sh`echo "@@python $(python3 --version 2>&1)"` : sh`true`}
echo "@@platform $OSTYPE $HOSTTYPE"
echo "@@nginx $(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; })"
d=$D; while [ ! -e "$d" ]; do d=\${d%/*}; d=\${d:-/}; done; [ -w "$d" ] && echo "@@writable yes"
true`;
}

export function parseInspection(output: string): HostState {
  const state: HostState = { now: 0, live: null, releases: [], meta: {}, envs: [], runtime: { node: '', python: '', platform: '' }, nginx: null, writable: false };
  for (const line of output.split('\n')) {
    const match = /^@@(\w+) ?(.*)$/.exec(line);
    if (!match) continue;
    const [, key, value] = match;
    if (key === 'now') state.now = Number(value);
    else if (key === 'current') state.live = value.replace(/^releases\//, '').replace(/\/$/, '');
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
  }
  state.releases.sort();
  return state;
}

export async function inspectHost(host: Host, runtime: 'node' | 'python' | 'none'): Promise<HostState> {
  return parseInspection(await mustRun(host, 'reading the deploy root', inspectScript(host.deployTo, runtime), { readonly: true }));
}

export function badReleases(state: HostState): string[] {
  return state.releases.filter((id) => state.meta[id]?.status === 'bad');
}
