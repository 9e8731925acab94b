// Which hosts a run acts on: --hosts and --roles against the environment's hosts.
import type { HostConfig } from '../config/types.js';
import { ConfigError } from '../lib/errors.js';

export function selectHosts(all: HostConfig[], names?: string[], roles?: string[]): HostConfig[] {
  const known = all.map((h) => h.name);
  const unknown = (names ?? []).filter((n) => !known.includes(n));
  if (unknown.length)
    throw new ConfigError(
      `--hosts: unknown host ${unknown.map((n) => `"${n}"`).join(', ')}; hosts: ${known.join(', ')}`,
    );
  const allRoles = new Set(all.flatMap((h) => h.roles));
  const unknownRoles = (roles ?? []).filter((r) => !allRoles.has(r));
  if (unknownRoles.length) {
    throw new ConfigError(
      `--roles: no host has role ${unknownRoles.map((r) => `"${r}"`).join(', ')}; ` +
        `roles: ${[...allRoles].join(', ') || '(none)'}`,
    );
  }
  return all.filter((h) => (!names || names.includes(h.name)) && (!roles || h.roles.some((r) => roles.includes(r))));
}
