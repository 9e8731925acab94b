// Step: each host fetches the release artifact from the store itself (in parallel, sha256-verified, retried) and
// stages it, in the one round trip an upload takes; the deployer sends only the command, curl's config and the
// rendered files.
import type { HostRun, StepOutcome } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import type { Release } from '../release/archive.js';
import { curlConfig, fetchScript } from '../scripts/fetch.js';
import { stageOnHost } from './upload.js';

export function fetchArtifact(run: TaskRun, release: Release) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const artifact = release.artifact;
    if (!artifact) throw new Error('fetchArtifact: the release is not from the artifact store (use upload)');
    const source = artifact.source;
    const conf = 'url' in source ? Buffer.from(curlConfig(source.url)) : undefined;
    const from = 'path' in source ? { path: source.path } : { curlConfigBytes: conf!.length };
    const createdNote = await stageOnHost(run, h, release, {
      what: 'fetch',
      fetch: fetchScript(h.paths.root, release.id, artifact.key, release.archive.sha256, from),
      head: async function* () {
        if (conf) yield conf;
      },
      headNote: conf ? "curl's config (the artifact's URL)" : '',
      dotenv: artifact.dotenv,
    });
    const size = `${(release.archive.bytes / 1024).toFixed(1)} KiB`;
    return run.tell(
      `${size} from the store, sha256 verified${createdNote}`,
      `fetch ${artifact.key} (${size}) and verify its sha256`,
    );
  };
}
