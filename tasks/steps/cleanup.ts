// Step: when a deploy fails before its switch, remove the unfinished release and put configs back.
import type { HostRun, StepOutcome } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import { mustRun } from '../hosts/host.js';
import { script } from '../lib/sh.js';
import type { Release } from '../release/archive.js';
import { discardScript } from '../scripts/release.js';
import { restoreConfigsScript } from '../scripts/services.js';

/** Undoes a failed prepare on a host. */
export function discard(run: TaskRun, release: Release) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const services = run.config.services;
    const command = script(
      services ? restoreConfigsScript(services, h.paths.root) : undefined,
      discardScript(h.paths.root, release.id, run.options.keepFailed),
    );
    const kept = await mustRun(h.host, 'cleanup', command);
    return kept.trim() ? `kept for inspection: ${kept.trim()}` : 'removed the unfinished release';
  };
}
