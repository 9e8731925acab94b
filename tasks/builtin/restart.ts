// Task `restart`: restart the program and reload nginx without deploying.
import type { ResolvedConfig } from '../config/types.js';
import type { TaskRun } from '../fleet/task-run.js';
import { mustRun } from '../hosts/host.js';
import { ConfigError } from '../lib/errors.js';
import { restartScript } from '../scripts/services.js';
import { restartSummary } from '../steps/restart.js';

/** restart needs services to restart. */
export function checkRestartConfig(_args: string[], config: ResolvedConfig): void {
  if (!config.services) throw new ConfigError('restart: no services configured (set "services" in the config)');
}

/** The `restart` task: restart the program on every host (and reload nginx). */
export async function restart(run: TaskRun): Promise<void> {
  checkRestartConfig(run.args, run.config);
  const services = run.config.services!;
  await run.each('restart', (h) =>
    mustRun(h.host, 'restart', restartScript(services, h.paths.root, true)).then(() =>
      restartSummary(run, services, true),
    ),
  );
}
