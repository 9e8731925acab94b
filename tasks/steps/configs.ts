// Step: install the release's nginx and supervisor configs where they changed, validated before the switch.
import type { HostRun, StepOutcome } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import { mustRun } from '../hosts/host.js';
import { script } from '../lib/sh.js';
import { installConfigsScript } from '../scripts/services.js';
import { upstreamFirstScript } from '../scripts/upstream.js';

/** Prepare step: install the new release's configs where they changed, validated, before the switch. */
export function installConfigs(run: TaskRun, releaseId: string) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const services = run.config.services;
    if (!services) return { skipped: 'no services configured' };
    // listen 'port': the site includes run/upstream.conf, which nginx -t needs (a first deploy makes it: blue).
    const upstream = upstreamFirstScript(run.config.cutover, h.paths.root);
    const output = await mustRun(
      h.host,
      'installing service configs',
      script(upstream, installConfigsScript(services, h.paths.root, releaseId)),
    );
    const changed = [...output.matchAll(/^@@changed (\w+)$/gm)].map((m) => m[1]);
    h.report.configsChanged = changed;
    return run.tell(
      changed.length ? `installed ${changed.join(', ')} (validated)` : 'unchanged',
      'install the configs that changed (validated)',
    );
  };
}
