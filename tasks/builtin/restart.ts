// Task `restart`: restart the program and reload nginx without deploying.
import type { TaskRun } from '../fleet/task-run.js';
import { mustRun } from '../hosts/host.js';
import { restartScript } from '../scripts/services.js';
import { restartSummary } from '../steps/restart.js';

/** The `restart` task: restart the program on every host (and reload nginx). */
export async function restart(run: TaskRun): Promise<void> {
  const services = run.config.services;
  if (!services) throw new Error('restart: no services configured (set "services" in the config)');
  await run.each('restart', (h) =>
    mustRun(h.host, 'restart', restartScript(services, h.paths.root, true)).then(() =>
      restartSummary(run, services, true),
    ),
  );
}
