// The CLI: argv → tasks run in order on the selected hosts, a summary, an exit code
// (0 ok, 1 a task failed, 2 usage or config error, 130/143 interrupted).
import path from 'node:path';
import { loadConfig } from '../config/load.js';
import type { HostConfig, ResolvedConfig } from '../config/types.js';
import { HostRun } from '../fleet/host-run.js';
import type { OtherEnvironment, RunOptions } from '../fleet/run-options.js';
import { selectHosts } from '../fleet/select-hosts.js';
import { inspectHost, TaskRun } from '../fleet/task-run.js';
import { BROKER_COMMAND } from '../hosts/broker.js';
import { connectHosts } from '../hosts/connect.js';
import { DryRunHost } from '../hosts/dry-run.js';
import type { Host } from '../hosts/host.js';
import { ConfigError, exitCodeOf, UsageError } from '../lib/errors.js';
import { Log } from '../lib/log.js';
import { type CliOptions, parseCommandLine, type TaskCall, USAGE } from './argv.js';
import { printTable, type TaskResult, taskResult } from './report.js';

export interface TaskDefinition {
  help: string;
  run(run: TaskRun): Promise<void>;
  /** Refuses the task's arguments or the config (UsageError / ConfigError) before any host is touched. */
  check?(args: string[], config: ResolvedConfig): void;
  /** The command-line parts only some tasks take: `--follow` (logs), `-- COMMAND...` (ssh). */
  accepts?: { follow?: boolean; command?: boolean; waves?: boolean; artifact?: boolean };
  /** false: the task opens no connection of slipway's (ssh uses the user's OpenSSH): none is opened ahead. */
  connects?: false;
  /** Connects to each host as someone else than the deploy user (`setup`: the admin user). */
  connectAs?(host: HostConfig, config: ResolvedConfig): HostConfig;
  /** Where the header line says the task runs, when not on its hosts (`build`: on the build host, or here). */
  runsOn?(config: ResolvedConfig, hosts: HostConfig[]): string;
}

export function task(
  help: string,
  run: (run: TaskRun) => Promise<void>,
  {
    check,
    accepts,
    connects,
    connectAs,
    runsOn,
  }: Pick<TaskDefinition, 'check' | 'accepts' | 'connects' | 'connectAs' | 'runsOn'> = {},
): TaskDefinition {
  return { help, run, check, accepts, connects, connectAs, runsOn };
}

/** An option only some tasks take, given to tasks none of which takes it, would be ignored: a usage error instead. */
function checkAccepted(tasks: Record<string, TaskDefinition>, calls: TaskCall[], options: CliOptions): void {
  const parts = [
    ['follow', '--follow', options.follow],
    ['command', '-- COMMAND', options.command !== undefined],
    ['waves', '--waves', options.waves !== undefined],
    ['artifact', '--artifact', options.artifact !== undefined],
  ] as const;
  for (const [key, shown, given] of parts) {
    if (!given || calls.some((c) => tasks[c.name].accepts?.[key])) continue;
    const takers = Object.keys(tasks).filter((name) => tasks[name].accepts?.[key]);
    throw new UsageError(`${shown}: none of the tasks given takes it (taken by: ${takers.join(', ') || 'no task'})`);
  }
}

function taskList(tasks: Record<string, TaskDefinition>): string {
  const width = Math.max(...Object.keys(tasks).map((n) => n.length));
  return Object.entries(tasks)
    .map(([name, t]) => `  ${name.padEnd(width)}  ${t.help}`)
    .join('\n');
}

/**
 * One key press reaches us more than once: the terminal signals the whole process group, and npx and
 * tsx relay it again (tsx re-sends when we do not exit at once). A repeat this soon is that echo.
 */
const SIGNAL_ECHO_MS = 1000;

/**
 * tsx SIGKILLs its child unless it acknowledges a relayed signal within 30 ms; the acknowledgement
 * needs a free event loop. The cleanup starts this much later, once the relays' echo has come and gone
 * (it also spares the commands it starts, such as a `ps`, from that echo).
 */
const SIGNAL_SETTLE_MS = 150;

/** What the task run needs of the command line's options. */
function runOptions(
  options: CliOptions,
  readEnvironment: RunOptions['readEnvironment'],
  task: string,
  connects: boolean,
): RunOptions {
  const { dryRun, rolling, autoRollback, keepFailed, force, follow, command, yes, trustNewHosts, artifact, waves } =
    options;
  return {
    task,
    connects,
    dryRun,
    rolling,
    autoRollback,
    keepFailed,
    force,
    follow,
    command,
    yes,
    trustNewHosts,
    artifact,
    readEnvironment,
    waves,
  };
}

async function runCalls(
  tasks: Record<string, TaskDefinition>,
  calls: TaskCall[],
  options: CliOptions,
  root: string,
  results: TaskResult[],
  setLog: (log: Log) => void,
  setActive: (run: TaskRun | null) => void,
): Promise<void> {
  const configFile = options.config ?? path.join(root, 'deploy.config.ts');
  const config = await loadConfig({ configFile, environment: options.env, ref: options.ref });
  for (const call of calls) tasks[call.name].check?.(call.args, config);
  if (options.rolling !== undefined && config.rollout?.waves && !options.waves)
    throw new UsageError('--rolling: the config sets rollout.waves; give one (or --waves instead)');
  const log = new Log({ json: options.json, verbose: options.verbose });
  setLog(log);
  const selected = selectHosts(config.hosts, options.hosts, options.roles);
  if (!selected.length) throw new ConfigError(`no host of environment "${config.environment}" matches --hosts/--roles`);
  // The build host of artifacts.buildOn has lines of its own (build, check) when it is none of the selected.
  log.hostWidth(
    [...selected, ...(config.artifacts?.buildOn ? [config.artifacts.buildOn.host] : [])].map((h) => h.name),
  );
  // Hosts connect while a task does its local work (e.g. building the release archive); a task's
  // first step on the hosts waits for them. One connection per host and identity (the deploy user, or
  // a task's connectAs), opened when the first task needing it starts.
  const connections = new Map<TaskDefinition['connectAs'], Promise<Host[]>>();
  const connectionFor = (definition: TaskDefinition) => {
    const as = definition.connectAs;
    let connecting = connections.get(as);
    if (!connecting) {
      connecting = connectHosts(config, as ? selected.map((h) => as(h, config)) : selected, {
        trustNewHosts: options.trustNewHosts,
        onNotice: (text) => log.warn(text),
      }).then((hosts) => (options.dryRun ? hosts.map((h): Host => new DryRunHost(h, log)) : hosts));
      connecting.catch(() => undefined);
      connections.set(as, connecting);
    }
    return connecting;
  };
  // At once for the first task, unless it opens none of slipway's (then only if it asks after all).
  if (tasks[calls[0].name].connects !== false) connectionFor(tasks[calls[0].name]);
  // Other environments a task reads (promote, artifacts): connected on demand, closed with the run's hosts.
  const otherHosts: Host[] = [];
  const readEnvironment = async (name: string): Promise<OtherEnvironment> => {
    const other = await loadConfig({ configFile, environment: name });
    const hosts = await connectHosts(other, other.hosts, {
      trustNewHosts: options.trustNewHosts,
      onNotice: (text) => log.warn(text),
    });
    otherHosts.push(...hosts);
    const runs = other.hosts.map((c, i) => {
      const run = new HostRun(c);
      run.connected(hosts[i]);
      return run;
    });
    await Promise.all(
      runs.map(async (run) => {
        run.state = await inspectHost(run.host, other.dependencies.type);
      }),
    );
    return { config: other, hosts: runs };
  };
  try {
    for (const call of calls) {
      const started = performance.now();
      const hostRuns = selected.map((c) => new HostRun(c));
      const connect = async () => {
        for (const [i, host] of (await connectionFor(tasks[call.name])).entries()) hostRuns[i].connected(host);
      };
      const called = `${call.name}${call.args.length ? `:${call.args.join(',')}` : ''}`;
      const run = new TaskRun(
        config,
        runOptions(options, readEnvironment, called, tasks[call.name].connects !== false),
        log,
        hostRuns,
        call.args,
        connect,
      );
      const result = taskResult(call, hostRuns);
      results.push(result);
      setActive(run);
      const where = tasks[call.name].runsOn?.(config, selected) ?? selected.map((h) => h.name).join(', ');
      log.line(`${called} on ${where} (${config.environment})`);
      try {
        await tasks[call.name].run(run);
        result.ok = true;
      } catch (error) {
        // A usage or config mistake changed nothing: there is nothing to undo.
        if (exitCodeOf(error) !== 2) await run.abort();
        throw error;
      } finally {
        run.finish();
        setActive(null);
        result.seconds = Number(((performance.now() - started) / 1000).toFixed(3));
        if (hostRuns.length > 1 || !result.ok) printTable(log, hostRuns, result.ok, options.dryRun);
      }
      const live = [...new Set(hostRuns.map((h) => h.report.live).filter(Boolean))];
      const liveNote = live.length ? `; ${options.dryRun ? 'would be live' : 'live'}: ${live.join(', ')}` : '';
      log.line(`${call.name}: done in ${result.seconds.toFixed(2)}s${liveNote}`);
    }
  } finally {
    for (const connecting of connections.values()) {
      const hosts = await connecting.catch(() => [] as Host[]);
      await Promise.all(hosts.map((h) => h.close()));
    }
    await Promise.all(otherHosts.map((h) => h.close()));
  }
}

/** Runs the command line against these tasks and exits. `root` is where deploy.config.ts lives. */
export async function runTasks(
  tasks: Record<string, TaskDefinition>,
  { root, argv = process.argv.slice(2) }: { root: string; argv?: string[] },
): Promise<never> {
  if (argv[0] === BROKER_COMMAND) {
    // Started by a run with keepConnections: serve until idle (see broker.ts), never run a task.
    await (await import('../hosts/ssh-host.js')).runBroker(Number(argv[1]), Number(argv[2]));
    return new Promise<never>(() => undefined);
  }
  let log = new Log({ json: argv.includes('--json') });
  let active: TaskRun | null = null;
  const results: TaskResult[] = [];
  let json = false;
  let dryRun = false;
  const finish = (code: number, error?: unknown): never => {
    if (error) log.error(error instanceof Error ? error.message : String(error));
    if (json) {
      const failure = error ? { error: log.redact((error as Error).message ?? String(error)) } : {};
      // Under --dry-run the hosts' "live" is what would be live.
      const body = { ok: code === 0, exitCode: code, ...(dryRun ? { dryRun } : {}), tasks: results, ...failure };
      process.stdout.write(`${log.redact(JSON.stringify(body))}\n`);
    }
    process.exit(code);
  };
  let interruptedAt: number | undefined;
  /** Once interrupted, the run ends only through the interrupt's cleanup, which exits 130 / 143. */
  let stopping: Promise<never> | undefined;
  const onSignal = (signal: 'SIGINT' | 'SIGTERM') => {
    const code = signal === 'SIGINT' ? 130 : 143;
    // A program on this terminal (the ssh task's) got this Ctrl-C too, and it is that program's to act on.
    if (signal === 'SIGINT' && active?.inForeground) return;
    if (interruptedAt !== undefined) {
      if (performance.now() - interruptedAt < SIGNAL_ECHO_MS) return;
      log.error(`${signal} again: exiting at once, cleanup unfinished (\`unlock\` removes a lock left behind)`);
      process.exit(code); // a deliberate second Ctrl-C: leave now
    }
    interruptedAt = performance.now();
    log.error(
      `${signal}: stopping, removing unfinished work and releasing locks (press again after a second to exit at once)`,
    );
    const run = active;
    stopping = new Promise((resolve) => setTimeout(resolve, SIGNAL_SETTLE_MS))
      .then(() => run?.interrupt())
      .then(
        () => finish(code),
        () => finish(code),
      );
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  try {
    const { options, calls } = parseCommandLine(argv);
    json = options.json;
    dryRun = options.dryRun;
    if (options.help) {
      process.stdout.write(`${USAGE}\n\ntasks:\n${taskList(tasks)}\n`);
      return process.exit(0);
    }
    if (options.list) {
      process.stdout.write(`${taskList(tasks)}\n`);
      return process.exit(0);
    }
    if (!calls.length) throw new UsageError(`no task given; tasks:\n${taskList(tasks)}`);
    const unknown = calls.find((c) => !(c.name in tasks));
    if (unknown) throw new UsageError(`unknown task "${unknown.name}"; tasks: ${Object.keys(tasks).join(', ')}`);
    checkAccepted(tasks, calls, options);
    await runCalls(
      tasks,
      calls,
      options,
      root,
      results,
      (l) => (log = l),
      (r) => (active = r),
    );
    return stopping ?? finish(0);
  } catch (error) {
    if (active) await (active as TaskRun).abort();
    return stopping ?? finish(exitCodeOf(error), error);
  }
}
