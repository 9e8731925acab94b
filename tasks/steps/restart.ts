// Step: restart the program and reload nginx after the switch.
import type { Services } from '../config/types.js';
import type { HostRun, StepOutcome } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import { mustRun } from '../hosts/host.js';
import { restartScript } from '../scripts/services.js';

/** After the switch: restart the program, reload nginx if its site changed. */
export function restartServices(run: TaskRun) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const services = run.config.services;
    if (!services) return { skipped: 'no services configured' };
    if (run.config.cutover.strategy === 'blue-green') return { skipped: 'blue-green: start-slot started the new slot' };
    // A dry run does not know whether the site changed: it shows the reload, which runs only if it did.
    const nginxChanged = run.options.dryRun || (h.report.configsChanged ?? []).includes('nginx');
    await mustRun(h.host, 'restart', restartScript(services, h.paths.root, nginxChanged));
    return restartSummary(run, services, run.options.dryRun ? 'if changed' : nginxChanged);
  };
}

/** A restart's step line: what it restarted and reloaded, or under --dry-run what it would. */
export function restartSummary(run: TaskRun, services: Services, nginx: boolean | 'if changed'): string {
  const program = services.supervisor?.name;
  const reloads = Boolean(nginx && services.nginx);
  const done = [program && `restarted ${program}`, reloads && 'reloaded nginx'];
  const planned = [
    program && `restart ${program}`,
    reloads && `reload nginx${nginx === 'if changed' ? ' if its site changed' : ''}`,
  ];
  return run.tell(done.filter(Boolean).join(', '), planned.filter(Boolean).join(', '));
}
