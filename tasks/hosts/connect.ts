// Connecting the selected hosts: local or SSH (loaded only when needed); every unreachable host named at once.
import type { HostConfig, ResolvedConfig } from '../config/types.js';
import { ConfigError, SlipwayError } from '../lib/errors.js';
import type { Host } from './host.js';
import { LocalHost } from './local-host.js';
import type { ConnectOptions } from './ssh-host.js';

export async function connectHosts(
  config: ResolvedConfig,
  selected: HostConfig[],
  options: ConnectOptions,
): Promise<Host[]> {
  const remote = selected.some((h) => !h.local);
  // node-ssh is only loaded when a remote host needs it: the local target starts faster.
  const ssh = remote ? await import('./ssh-host.js') : undefined;
  const settled = await Promise.allSettled(
    selected.map((h) =>
      h.local ? Promise.resolve(new LocalHost(h.name, h.deployTo, h.roles)) : ssh!.connectSshHost(h, config, options),
    ),
  );
  const errors = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as Error] : []));
  const hosts = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  if (errors.length) {
    await Promise.all(hosts.map((h) => h.close()));
    // A bad key file or passphrase setting is the config's fault (exit 2), not the network's.
    const configErrors = errors.filter((e) => e instanceof ConfigError);
    if (configErrors.length) throw new ConfigError(configErrors.map((e) => e.message).join('\n'));
    throw new HostsUnreachable(errors.map((e) => e.message).join('\n'));
  }
  return hosts;
}

export class HostsUnreachable extends SlipwayError {}
