// Step: an artifact's prebuilt dependency environment built on the build host (artifacts.buildOn), not here: the
// release tree goes up once over the host's SSH connection, `npm ci` runs there, the tree comes back with it.
import { spawn } from 'node:child_process';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { HostRun } from '../fleet/host-run.js';
import { TaskRun } from '../fleet/task-run.js';
import { connectHosts } from '../hosts/connect.js';
import { CommandFailed } from '../hosts/host.js';
import type { HostState } from '../release/state.js';
import { buildOnHostScript, parseBuildRuntime } from '../scripts/build.js';

export interface HostBuild {
  /** The build host's runtime: what the environment is keyed by. */
  runtime: HostState['runtime'];
  /** Where it was built, for the manifest: "<user@address:port> (<host name>)". */
  builder: string;
}

/** Exit code and stderr of a local tar. */
function tar(args: string[], stdio: ['ignore', 'pipe', 'pipe'] | ['pipe', 'ignore', 'pipe']) {
  const child = spawn('tar', args, { stdio });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stderr })),
  );
  return { child, done };
}

/** Sends `tree` to the host, runs the install there and replaces `tree` with what it sends back. */
async function buildThere(h: HostRun, tree: string): Promise<HostState['runtime']> {
  const built = `${tree}.built`;
  mkdirSync(built);
  const pack = tar(['-czf', '-', '-C', tree, '.'], ['ignore', 'pipe', 'pipe']);
  // Read at once: Node drops what a child wrote to a pipe nobody reads by the time it exits (a small tree is
  // packed before the SSH channel opens).
  const treeStream = pack.child.stdout!.pipe(new PassThrough());
  const unpack = tar(['-xzf', '-', '--no-same-owner', '-C', built], ['pipe', 'ignore', 'pipe']);
  unpack.child.stdin?.on('error', () => undefined); // it exited early: its own exit status says why
  const result = await h.host.exec(buildOnHostScript(), {
    stdin: treeStream,
    stdinNote: 'the release tree (tar.gz)',
    stdout: unpack.child.stdin!,
  });
  const [packed, unpacked] = await Promise.all([pack.done, unpack.done]);
  if (result.code !== 0) throw new CommandFailed(h.config.name, 'the prebuilt environment build (npm ci)', result);
  if (packed.code !== 0) throw new Error(`packing the release tree for ${h.config.name} failed: ${packed.stderr}`);
  if (unpacked.code !== 0)
    throw new Error(`unpacking the tree built on ${h.config.name} failed: ${unpacked.stderr.trim()}`);
  const runtime = parseBuildRuntime(result.stderr);
  if (!runtime) throw new Error(`the build on ${h.config.name} did not report its node version and platform`);
  rmSync(tree, { recursive: true, force: true });
  renameSync(built, tree);
  return { ...runtime, python: '' };
}

/**
 * Runs `body` on the build host (artifacts.buildOn): over the run's own connection to it when it is one of the
 * run's hosts (a host with another role too), else over one opened for this and closed after. That connection is
 * part of the run's interrupt (Ctrl-C, SIGTERM): what runs there is stopped as on the run's hosts (its process
 * group), and the interrupt waits for `body` to end, so what the command's own exit does (its folder removed) is
 * done before the run exits.
 */
export async function onBuildHost<T>(
  run: TaskRun,
  body: (builder: TaskRun, target: HostRun) => Promise<T>,
): Promise<T> {
  const config = run.config.artifacts?.buildOn?.host;
  if (!config) throw new Error('onBuildHost: artifacts.buildOn is not set');
  // Over the run's connection when the build host is one of its hosts and the task connects to them (a deploy
  // that builds); `build` alone connects to none of them, only to the build host.
  const target = run.options.connects !== false && run.hosts.find((h) => h.config.name === config.name);
  if (target) return body(run, target);
  const [host] = await connectHosts(run.config, [config], {
    trustNewHosts: run.options.trustNewHosts ?? false,
    onNotice: (text) => run.log.warn(text),
  });
  if (run.interrupted) {
    await host.close();
    throw new Error(`interrupted before the build on ${config.name}`);
  }
  const own = new HostRun(config);
  own.connected(host);
  const builder = new TaskRun(run.config, run.options, run.log, [own], run.args, async () => undefined);
  const running = body(builder, own);
  const settled = running.then(
    () => undefined,
    () => undefined,
  );
  const unregister = run.onAbort(async () => {
    await host.interrupt();
    await settled;
  });
  try {
    return await running;
  } finally {
    unregister();
    await host.close();
  }
}

/** Builds the prebuilt environment into `tree` on the build host. */
export async function buildOnHost(run: TaskRun, tree: string): Promise<HostBuild> {
  return onBuildHost(run, async (builder, target) => {
    let runtime: HostState['runtime'] | undefined;
    await builder.each(
      'build',
      async (h) => {
        runtime = await buildThere(h, tree);
        return `npm ci there (node ${runtime.node}, ${runtime.platform})`;
      },
      [target],
    );
    return { runtime: runtime!, builder: `${target.host.address} (${target.config.name})` };
  });
}
