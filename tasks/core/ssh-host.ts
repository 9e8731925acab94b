// placeholder until the SSH transport lands (issue 3)
import type { HostConfig, ResolvedConfig } from './config.js';
import type { Host } from './host.js';
export async function connectSshHost(h: HostConfig, _config: ResolvedConfig, _o: { trustNewHosts: boolean }): Promise<Host> {
  throw new Error(`${h.name}: SSH hosts are not supported yet`);
}
