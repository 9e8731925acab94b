// Task `pull:<from-environment>[,<host>]` (collective.pushdeploy's pull): copies the source environment's `data`
// (shared dirs and files, and a dump command's output) from one of its hosts into the selected environment's
// shared dirs. The data streams through the deployer, source → every target at once, into a staging dir on
// each target; only once every target has all of it is it swapped into shared/. A protected environment is
// written only with --yes or a "y" typed on a terminal.
import { createInterface } from 'node:readline/promises';
import { PassThrough } from 'node:stream';
import { loadConfig } from '../config/load.js';
import type { ResolvedConfig } from '../config/types.js';
import type { HostRun } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import { connectHosts } from '../hosts/connect.js';
import { DryRunHost } from '../hosts/dry-run.js';
import { type Host, mustRun } from '../hosts/host.js';
import { ConfigError, SlipwayError, UsageError } from '../lib/errors.js';
import type { Shell } from '../lib/sh.js';
import {
  discardPullScript,
  dumpScript,
  packDataScript,
  publishDataScript,
  pulledItems,
  receiveDataScript,
  receiveDumpScript,
} from '../scripts/pull.js';

/** pull:<environment>[,<host>]: the environment to copy from, not the one written to. */
export function checkPullArgs(args: string[], config: ResolvedConfig): void {
  if (args.length < 1 || args.length > 2)
    throw new UsageError(`pull takes the environment to copy from (pull:production, or pull:production,web1)`);
  if (args[0] === config.environment)
    throw new UsageError(`pull:${args[0]}: that is the environment being written to; pick another with --env`);
}

/** The user declined on the terminal: nothing was changed. */
export class PullDeclined extends SlipwayError {}

async function confirmProtected(run: TaskRun, from: string, items: string[]): Promise<void> {
  const env = run.config.environment;
  if (!run.config.protected || run.options.yes || run.options.dryRun) return;
  const what = `${items.join(', ')} in ${run.hosts.map((h) => h.config.name).join(', ')}`;
  if (!process.stdin.isTTY) {
    throw new UsageError(
      `environment "${env}" is protected: pull would replace ${what} with "${from}"'s; ` +
        'nothing changed. Run it again with --yes to proceed (or on a terminal, to be asked)',
    );
  }
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(
      `Environment "${env}" is protected. Replace ${what} with "${from}"'s data? [y/N] `,
    );
    if (!/^y(es)?$/i.test(answer.trim())) throw new PullDeclined(`pull:${from}: not confirmed; nothing changed`);
  } finally {
    prompt.close();
  }
}

/** The source environment's config and the host to copy from (the first one, or the one named). */
async function sourceOf(run: TaskRun): Promise<{ config: ResolvedConfig; hostName: string }> {
  const [from, named] = run.args;
  const config = await loadConfig({ configFile: run.config.configFile, environment: from });
  if (!config.data)
    throw new ConfigError(`pull:${from}: no data configured (data: { dirs, files, dump }) for environment "${from}"`);
  const host = named ? config.hosts.find((h) => h.name === named) : config.hosts[0];
  if (!host) {
    const names = config.hosts.map((h) => h.name).join(', ');
    throw new UsageError(`pull:${from},${named}: no host "${named}" in environment "${from}"; hosts: ${names}`);
  }
  return { config, hostName: host.name };
}

/**
 * Streams one source command's stdout into one command on every target at once (one PassThrough each, so the
 * slowest target sets the pace); a target that ends early stops taking part without holding up the others.
 * With `parallel` below the number of targets, each group of that many gets its own run of the source command:
 * a target waiting for its turn would otherwise hold up the stream for the others.
 */
async function fanOut(
  run: TaskRun,
  source: Host,
  step: string,
  send: Shell,
  receive: (deployTo: string) => Shell,
): Promise<void> {
  const size = Math.min(run.config.parallel ?? run.hosts.length, run.hosts.length);
  for (let i = 0; i < run.hosts.length; i += size)
    await fanOutTo(run, run.hosts.slice(i, i + size), source, step, send, receive);
}

async function fanOutTo(
  run: TaskRun,
  targets: HostRun[],
  source: Host,
  step: string,
  send: Shell,
  receive: (deployTo: string) => Shell,
): Promise<void> {
  const fromSource = new PassThrough({ highWaterMark: 1024 * 1024 });
  const toTargets = targets.map(() => new PassThrough({ highWaterMark: 1024 * 1024 }));
  for (const stream of toTargets) fromSource.pipe(stream);
  let sourceFailure: unknown;
  const sending = mustRun(source, `${step} on ${source.name}`, send, { stdout: fromSource }).catch((error) => {
    sourceFailure = error;
  });
  const receiving = run.each(
    step,
    async (h) => {
      const stream = toTargets[targets.indexOf(h)];
      try {
        const options = { stdin: stream, stdinNote: `the ${step} from ${source.name}` };
        const size = (await mustRun(h.host, step, receive(h.config.deployTo), options)).trim();
        return run.tell(`from ${source.name}: ${size} ${step === 'data' ? 'KiB' : 'bytes'}`, `receive ${step}`);
      } finally {
        stream.resume(); // whatever still comes is dropped, so the source and the other targets go on
      }
    },
    targets,
  );
  const [received] = await Promise.allSettled([receiving]);
  if (received.status === 'rejected') await source.interrupt();
  await sending;
  // The source's own error says why first: a target's broken tar is only its consequence.
  if (sourceFailure) throw sourceFailure;
  if (received.status === 'rejected') throw received.reason;
}

export async function pull(run: TaskRun): Promise<void> {
  const from = run.args[0];
  const { config: sourceConfig, hostName } = await sourceOf(run);
  const data = sourceConfig.data!;
  const items = pulledItems(data);
  await confirmProtected(run, from, items);
  const [connected] = await connectHosts(
    sourceConfig,
    sourceConfig.hosts.filter((h) => h.name === hostName),
    { trustNewHosts: run.options.trustNewHosts ?? false, onNotice: (text) => run.log.warn(text) },
  );
  const source: Host = run.options.dryRun ? new DryRunHost(connected, run.log) : connected;
  const unregister = run.onAbort(() => source.interrupt());
  try {
    run.log.line(`pull: ${items.join(', ')} from ${source.name} (${from}) into ${run.config.environment}`);
    await run.locked('pull', async () => {
      const id = `${Date.now().toString(36)}-${process.pid}`;
      await run.undoable(
        async () => {
          const shipped = [...data.dirs, ...data.files];
          if (shipped.length)
            await fanOut(run, source, 'data', packDataScript(source.deployTo, data), (to) => receiveDataScript(to, id));
          if (data.dump) {
            const dump = data.dump;
            await fanOut(run, source, 'dump', dumpScript(source.deployTo, dump.command), (to) =>
              receiveDumpScript(to, id, dump.file),
            );
          }
        },
        'discard',
        async (h) => {
          await mustRun(h.host, 'discard', discardPullScript(h.config.deployTo, id));
          return 'removed the partial pull';
        },
      );
      // Every target has everything: swap it in (riding on the unlock), all hosts in parallel.
      await run.atEnd('publish', async (h) => {
        await run.exec(h, 'publish', publishDataScript(h.config.deployTo, id, items));
        return run.tell(`replaced ${items.join(', ')}`, `replace ${items.join(', ')}`);
      });
    });
  } finally {
    unregister();
    await source.close();
  }
}
