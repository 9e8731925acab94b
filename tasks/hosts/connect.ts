// Connecting the selected hosts: local or SSH (loaded only when needed), at most `maxConnects` handshakes at
// once (each bounded by connectTimeoutSeconds); every unreachable host named at once.
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
  const limit = (await import('p-limit')).default(config.maxConnects ?? DEFAULT_MAX_CONNECTS);
  const settled = await Promise.allSettled(
    selected.map((h) =>
      h.local
        ? Promise.resolve(new LocalHost(h.name, h.deployTo, h.roles))
        : limit(() => ssh!.connectSshHost(h, config, options)),
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

/** SSH handshakes under way at once, unless the config's maxConnects says otherwise. */
export const DEFAULT_MAX_CONNECTS = 50;

export class HostsUnreachable extends SlipwayError {}
