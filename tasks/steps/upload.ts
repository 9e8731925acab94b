// Step: ship the release archive to each host in one round trip (staged under tmp/, not yet a release).
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { HostRun, StepOutcome } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import { CommandFailed } from '../hosts/host.js';
import { script, sh } from '../lib/sh.js';
import type { Release } from '../release/archive.js';
import { releaseMeta } from '../release/metadata.js';
import type { RenderedFile } from '../release/templates.js';
import { linkEnvironmentScript } from '../scripts/environment.js';
import { NGINX_REJECTED, nginxCheckScript } from '../scripts/nginx-check.js';
import { publishScript, stageScript } from '../scripts/release.js';
import { nginxTestCommand } from '../scripts/services.js';

/**
 * What the stage script reads on stdin: the archive, then the rendered files (never on a command line, where `ps`
 * shows them).
 */
export function stageInput(archiveFile: string, files: RenderedFile[]): Readable {
  return Readable.from(
    (async function* () {
      yield* createReadStream(archiveFile);
      for (const f of files) yield Buffer.from(f.content);
    })(),
  );
}

/**
 * The upload step: one round trip that also links a ready environment, checks nginx and publishes when it can.
 * Where nginx is installed, nginx -t runs as the install will run it (services.sudo + services.nginx.test),
 * or as the deploy user where nginx is not managed; a rejection is reported as the nginx check's failure.
 * Through services.helper there is no such check here: the helper's install validates the site.
 */
export function upload(run: TaskRun, release: Release) {
  return async (h: HostRun): Promise<StepOutcome> => {
    const key = release.envKeys.get(h.host.name) ?? null;
    const envReady = key === null || h.state.envs.includes(key);
    const files = release.files.get(h.host.name) ?? [];
    const staged = h.paths.staging(release.id);
    const spec = {
      deployTo: h.paths.root,
      id: release.id,
      sha256: release.archive.sha256,
      bytes: release.archive.bytes,
      files,
      shared: run.config.shared,
    };
    const meta = releaseMeta(release, key);
    // Not through the helper: as root, nginx -t with a -p/-c of the deploy user's choosing would load any config
    // (load_module, logs anywhere); as the deploy user it fails where nginx never ran. The helper checks the
    // site itself, as root, when the configs step installs it, still before the switch.
    const helper = run.config.services?.helper;
    const nginxTest =
      h.state.nginx && !helper ? (nginxTestCommand(run.config.services) ?? sh`${h.state.nginx} -t`) : undefined;
    const command = script(
      stageScript(spec),
      key && envReady ? linkEnvironmentScript(run.config.dependencies.type, h.paths.root, release.id, key) : undefined,
      nginxTest && files.some((f) => f.name === 'nginx.conf') ? nginxCheckScript(nginxTest, staged) : undefined,
      envReady ? publishScript(h.paths.root, meta) : undefined,
    );
    const stdinNote = [
      `the release archive (${release.archive.bytes} bytes)`,
      ...files.map((f) => `${f.name}:\n${f.content}`),
    ].join('\n');
    const result = await h.host.exec(command, { stdin: stageInput(release.archive.file, files), stdinNote });
    if (result.code !== 0) {
      const nginxRejected = result.stderr.includes(`${NGINX_REJECTED}:`);
      if (nginxRejected) h.report.failedAt = 'nginx check';
      throw new CommandFailed(h.host.name, nginxRejected ? 'nginx check' : 'upload', result);
    }
    if (envReady) h.state.meta[release.id] = meta;
    const size = `${(release.archive.bytes / 1024).toFixed(1)} KiB`;
    const created = [...result.stdout.matchAll(/^@@created-shared (.+)$/gm)].map((m) => m[1]);
    const createdNote = created.length ? `; created empty (0600): ${created.join(', ')}` : '';
    return run.tell(`${size}, sha256 verified${createdNote}`, `upload ${size} and verify its sha256`);
  };
}
