// Many hosts, one result: steps run on every host in parallel (bounded), each host's step is one
// output line, and a failure on any host becomes one error naming every failed host.
import type { ResolvedConfig } from '../config/types.js';
import { CommandFailed, type Host, mustRun } from '../hosts/host.js';
import { SlipwayError } from '../lib/errors.js';
import { faultPoint } from '../lib/faults.js';
import type { Log } from '../lib/log.js';
import type { Shell } from '../lib/sh.js';
import type { HostState } from '../release/state.js';
import { heldThenScript, splitHeldOutput } from '../scripts/held.js';
import { inspectScript, parseInspection } from '../scripts/inspect.js';
import { type HostRun, liveRelease, type StepOutcome } from './host-run.js';
import { lockAll } from './lock-all.js';
import type { RunOptions } from './run-options.js';

/** A step failed on one host or more: one error naming every failed host. */
export class StepFailed extends SlipwayError {
  constructor(failures: Array<{ host: string; error: Error }>) {
    super(
      failures.map((f) => `${f.error.message.startsWith(f.host) ? '' : `${f.host}: `}${f.error.message}`).join('\n'),
    );
  }
}

/**
 * The failures a rollout tolerates across its waves (rollout.maxFailures): a host failing a step while
 * there is room is left out of its wave's further steps and recorded here; past the limit the step throws.
 */
export interface FailureBudget {
  limit: number;
  failed: Array<{ host: HostRun; step: string; error: Error }>;
}

/** A step queued to the end of the `locked` block (see TaskRun.atEnd). */
interface QueuedStep {
  step: string;
  fn: (h: HostRun) => Promise<StepOutcome>;
  targets: HostRun[];
}

/** State shared by a run and its batches: undo work for interrupts, and the held locks. */
interface RunShared {
  cleanups: Set<() => Promise<void>>;
  finally?: Set<() => void>;
  /** Inside a `locked` block: runs a host's command and gives back its lock in the same round trip. */
  releaseLock?: (h: HostRun, what: string, command: Shell) => Promise<string>;
  /** Steps queued to the block's end, in order. */
  queued: QueuedStep[];
  /** While the block's end runs its queued steps: the hosts whose lock the running step's command gives back. */
  givingBack?: Set<HostRun>;
  /** Set once, by a Ctrl-C / SIGTERM: commands failing from then on were killed by it. */
  interrupted?: boolean;
  aborting?: Promise<void>;
  /** Work under way that an interrupt must wait for rather than kill (putting hosts back on a release). */
  finishing?: number;
  /** Programs running on this terminal (ssh): Ctrl-C is theirs. */
  foreground?: number;
}

export class TaskRun {
  constructor(
    readonly config: ResolvedConfig,
    readonly options: RunOptions,
    readonly log: Log,
    readonly hosts: HostRun[],
    readonly args: string[],
    /** Resolves once every HostRun has its connected host. */
    private readonly connect: () => Promise<void>,
    private readonly shared: RunShared = { cleanups: new Set(), queued: [] },
    /** Set on a rollout's waves (steps/rollout.ts): failures within it leave the host out instead of throwing. */
    readonly budget?: FailureBudget,
  ) {}

  /** A step's detail: what it did, or under --dry-run what it would do (nothing it reports has happened). */
  tell(done: string, wouldDo: string): string {
    return this.options.dryRun ? `would ${wouldDo}` : done;
  }

  private connected?: Promise<void>;
  private ready(): Promise<void> {
    this.connected ??= this.connect();
    return this.connected;
  }

  /**
   * Runs a step's command on a host (stdout; CommandFailed unless it exits 0). Run by the last step queued
   * with atEnd at the end of a `locked` block, it also gives back the host's lock in the same round trip.
   */
  async exec(h: HostRun, what: string, command: Shell): Promise<string> {
    const releaseLock = this.shared.givingBack?.has(h) ? this.shared.releaseLock : undefined;
    return releaseLock ? releaseLock(h, what, command) : mustRun(h.host, what, command);
  }

  /**
   * Holds a step's command back on a host instead of sending it (the deploy's switch, when nothing could need
   * it undone on another host; see cutover): it goes on its own just before the next command on that host,
   * whoever sends it (HostRun.connected), or at the block's end in the round trip of the last queued step and
   * the unlock; never dropped (an interrupt's unlock carries it too). A step after it that sends nothing (a hook
   * stage with no stages, a restart with no services) leaves it held. If it fails once sent, `failed` runs,
   * then its error fails the command that sent it (or the block's end). Only where `canHold`.
   */
  hold(h: HostRun, what: string, command: Shell, failed: (error: Error) => void): void {
    if (!this.canHold) throw new Error(`${what}: a command is held back only inside a locked block, not dry-run`);
    h.hold(what, command, failed);
  }

  /** Inside a `locked` block (its unlock carries what is still held), and not --dry-run (it prints in order). */
  get canHold(): boolean {
    return Boolean(this.shared.releaseLock) && !this.options.dryRun;
  }

  /**
   * Queues a step to the end of the `locked` block, where each host's command rides on its unlock (one
   * round trip; the step runs one command per host, through `exec`). A step that starts after it runs it
   * first, on its own, so everything still runs in the order written, and under the lock. Outside a
   * `locked` block it runs at once.
   */
  async atEnd(step: string, fn: (h: HostRun) => Promise<StepOutcome>, targets: HostRun[] = this.hosts): Promise<void> {
    if (!this.shared.releaseLock) return this.each(step, fn, targets);
    this.shared.queued.push({ step, fn, targets });
  }

  /** Runs the queued steps in order; at the block's end the last one on each host carries its unlock. */
  private async runQueued(atBlockEnd: boolean): Promise<void> {
    const queued = this.shared.queued.splice(0);
    for (const [i, q] of queued.entries()) {
      const later = queued.slice(i + 1).flatMap((l) => l.targets);
      this.shared.givingBack = atBlockEnd ? new Set(q.targets.filter((h) => !later.includes(h))) : undefined;
      try {
        await this.each(q.step, q.fn, q.targets);
      } finally {
        this.shared.givingBack = undefined;
      }
    }
  }

  withRole(role: string): HostRun[] {
    return this.hosts.filter((h) => h.config.roles.includes(role));
  }

  /** All hosts at once, or --rolling N hosts at a time: each batch is prepared and switched before the next. */
  batches(): TaskRun[] {
    const size = this.options.rolling ?? this.hosts.length;
    const groups: HostRun[][] = [];
    for (let i = 0; i < this.hosts.length; i += size) groups.push(this.hosts.slice(i, i + size));
    if (groups.length === 1) return [this];
    const runs = groups.map(
      (hosts) => new TaskRun(this.config, this.options, this.log, hosts, this.args, this.connect, this.shared),
    );
    for (const batch of runs.slice(0, -1)) batch.batchFollows = true;
    return runs;
  }

  private batchFollows = false;

  /** False for a --rolling batch that another batch follows. */
  get lastBatch(): boolean {
    return !this.batchFollows;
  }

  /**
   * The same run over some of its hosts (a rollout's wave), sharing its locks, undo work and output. `followed`:
   * another wave comes after it (so, as for a --rolling batch, a one-host wave's switch is not held back).
   */
  subRun(hosts: HostRun[], budget?: FailureBudget, followed = false): TaskRun {
    const run = new TaskRun(this.config, this.options, this.log, hosts, this.args, this.connect, this.shared, budget);
    run.batchFollows = followed || this.batchFollows;
    return run;
  }

  private async limited<T>(targets: HostRun[], fn: (h: HostRun) => Promise<T>): Promise<PromiseSettledResult<T>[]> {
    const pLimit = (await import('p-limit')).default;
    const limit = pLimit(this.config.parallel ?? Math.max(1, targets.length));
    return Promise.allSettled(targets.map((h) => limit(() => fn(h))));
  }

  /** Runs one named step on each host (or the given ones); throws StepFailed naming every failed host. */
  async each(step: string, fn: (h: HostRun) => Promise<StepOutcome>, targets: HostRun[] = this.hosts): Promise<void> {
    await this.ready();
    if (this.shared.queued.length) await this.runQueued(false);
    await faultPoint('before', step);
    this.log.beginStep(step, targets.length);
    const settled = await this.limited(targets, async (h) => {
      const start = performance.now();
      try {
        const outcome = await fn(h);
        const ms = performance.now() - start;
        h.report.seconds = Number(((h.report.seconds ?? 0) + ms / 1000).toFixed(3));
        if (outcome && typeof outcome === 'object') this.log.step(h.host.name, step, ms, 'skipped', outcome.skipped);
        else this.log.step(h.host.name, step, ms, this.options.dryRun ? 'dry-run' : 'ok', outcome ?? '');
      } catch (error) {
        this.log.step(h.host.name, step, performance.now() - start, 'failed');
        h.report.failedAt ??= step;
        throw error;
      }
    });
    this.log.endStep(step);
    const failures = settled.flatMap((s, i) =>
      s.status === 'rejected' ? [{ host: targets[i].host.name, error: s.reason as Error }] : [],
    );
    if (failures.length && !this.tolerate(step, targets, failures)) throw new StepFailed(failures);
    await faultPoint('after', step);
  }

  /** Within the failure budget: the failed hosts leave this run (the rollout puts them back), and the step goes on. */
  private tolerate(step: string, targets: HostRun[], failures: Array<{ host: string; error: Error }>): boolean {
    const budget = this.budget;
    if (!budget || this.interrupted || this.shared.finishing) return false;
    if (budget.failed.length + failures.length > budget.limit) return false;
    for (const f of failures) {
      const host = targets.find((h) => h.host.name === f.host)!;
      if (this.hosts.includes(host)) this.hosts.splice(this.hosts.indexOf(host), 1);
      budget.failed.push({ host, step, error: f.error });
      // Why, too: the rollout's end names the host and step only, and the way back says nothing of it.
      this.log.warn(
        `${f.host}: ${step} failed, left out of the rollout (${budget.failed.length} of ${budget.limit} failures ` +
          `allowed):\n${f.error.message.replace(/^/gm, '  ')}`,
      );
    }
    return true;
  }

  /** Reads every host's state without locking (releases, check). */
  async inspect(): Promise<void> {
    await this.each('inspect', async (h) => {
      h.state = await inspectHost(h.host, this.config.dependencies.type);
    });
  }

  /** Takes the lock on every host (all or nothing), reads their state, runs body, always releases. */
  async locked(task: string, body: () => Promise<void>): Promise<void> {
    await this.ready();
    const locks = await lockAll(
      this.hosts.map((h) => h.host),
      task,
      (host) => inspectScript(host.deployTo, this.config.dependencies.type),
    );
    // Gives back a host's lock; a command given runs first, in the same round trip, and before it the host's held
    // command (TaskRun.hold) if it has one: `command` runs only if that one succeeded.
    const giveBack = async (h: HostRun, what = 'unlock', command?: Shell): Promise<string | undefined> => {
      const lock = locks.get(h.host);
      if (!lock) return command && mustRun(h.host, what, command);
      locks.delete(h.host);
      const held = h.takeHeld();
      if (!held) {
        const result = await lock.release(command);
        if (command && result?.code !== 0) throw new CommandFailed(h.host.name, what, result!);
        return result?.stdout;
      }
      const result = (await lock.release(command ? heldThenScript(held.command, command) : held.command))!;
      const out = command ? splitHeldOutput(result.stdout) : { held: result.stdout, next: null };
      // Alone, or no marker: the held command failed, and `command` never ran.
      if (result.code !== 0 && out.next === null) {
        const failed = new CommandFailed(h.host.name, held.what, result);
        held.failed(failed);
        throw failed;
      }
      if (result.code !== 0) throw new CommandFailed(h.host.name, what, { ...result, stdout: out.next ?? '' });
      return command && (out.next ?? '');
    };
    // Called by the task's end and by an interrupt's cleanup, which can meet: each lock goes back once.
    let releasing: Promise<void> | undefined;
    const release = () => (releasing ??= Promise.all(this.hosts.map((h) => giveBack(h))).then(() => locks.clear()));
    this.shared.releaseLock = async (h, what, command) => (await giveBack(h, what, command)) ?? '';
    this.shared.cleanups.add(release);
    try {
      await this.each('lock', async (h) => {
        h.lock = locks.get(h.host);
        h.state = parseInspection(h.lock!.output);
        const stale = h.lock?.recovered;
        if (!stale) return undefined;
        const since = `(pid ${stale.pid}, since ${stale.startedAt})`;
        return `took over a stale lock of ${stale.user}@${stale.machine} ${since}`;
      });
      await body();
      await this.runQueued(true);
    } finally {
      // A block that failed does not do its end's work (purge): it only gives back the locks.
      this.shared.queued.splice(0);
      this.shared.releaseLock = undefined;
      await release();
      this.shared.cleanups.delete(release);
    }
  }

  /**
   * Runs body; if it fails or the run is interrupted, runs the `undo` step on every host before the
   * error goes on, except on a host whose lock another run took: nothing there is this run's to undo.
   */
  async undoable(body: () => Promise<void>, step: string, undo: (h: HostRun) => Promise<StepOutcome>): Promise<void> {
    // An interrupt kills the running command, so the body fails while the interrupt's cleanup starts: undo once.
    let undoing: Promise<void> | undefined;
    const runUndo = () =>
      (undoing ??= this.each(
        step,
        undo,
        this.hosts.filter((h) => !h.host.lockLost),
      ).catch((error: Error) => this.log.error(`${step} failed too:\n${error.message}`)));
    const unregister = this.onAbort(runUndo);
    try {
      await body();
    } catch (error) {
      // Still registered meanwhile: an interrupt's cleanup waits for this undo rather than ending the run under it.
      await runUndo();
      throw error;
    } finally {
      unregister();
    }
  }

  /** Registers work to undo if the run is interrupted; returns the function that unregisters it. */
  onAbort(fn: () => Promise<void>): () => void {
    this.shared.cleanups.add(fn);
    return () => this.shared.cleanups.delete(fn);
  }

  /** Local work to drop when the task ends, however it ends (e.g. the release archive). */
  onFinish(fn: () => void): void {
    this.shared.finally ??= new Set();
    this.shared.finally.add(fn);
  }

  finish(): void {
    for (const fn of this.shared.finally ?? []) fn();
    this.shared.finally?.clear();
  }

  /** True once the run was interrupted (Ctrl-C, SIGTERM): a command failing since then was killed by it. */
  get interrupted(): boolean {
    return this.shared.interrupted === true;
  }

  /** Ctrl-C / SIGTERM: abort, with every step knowing that the failures it sees come from the interrupt. */
  interrupt(): Promise<void> {
    this.shared.interrupted = true;
    return this.abort();
  }

  /** Runs work an interrupt must let finish (it would leave a host half put back): abort waits for it instead. */
  async finishing<T>(work: () => Promise<T>): Promise<T> {
    this.shared.finishing = (this.shared.finishing ?? 0) + 1;
    try {
      return await work();
    } finally {
      this.shared.finishing--;
    }
  }

  /** Runs a program on this terminal (the ssh task's shell): while it runs, Ctrl-C is the program's, not the run's. */
  async foreground<T>(work: () => Promise<T>): Promise<T> {
    this.shared.foreground = (this.shared.foreground ?? 0) + 1;
    try {
      return await work();
    } finally {
      this.shared.foreground--;
    }
  }

  get inForeground(): boolean {
    return (this.shared.foreground ?? 0) > 0;
  }

  /**
   * Stops what is running on every host, then undoes unfinished work and releases the locks; once, however
   * often called.
   */
  abort(): Promise<void> {
    this.shared.aborting ??= this.stopAndUndo();
    return this.shared.aborting;
  }

  private async stopAndUndo(): Promise<void> {
    if (!this.shared.finishing) await Promise.all(this.hosts.map((h) => h.hostIfConnected?.interrupt()));
    for (const fn of [...this.shared.cleanups].reverse()) await fn().catch(() => undefined);
    this.shared.cleanups.clear();
    this.finish();
    // Compact output (a terminal): hosts with an unknown state by name, the others counted by live release.
    const counted = new Map<string, number>();
    for (const h of this.hosts) {
      if (this.log.compact && !h.report.unknown) counted.set(liveRelease(h), (counted.get(liveRelease(h)) ?? 0) + 1);
      else
        this.log.line(`  ${h.config.name}: live ${liveRelease(h)}${h.report.unknown ? ` (${h.report.unknown})` : ''}`);
    }
    for (const [id, n] of counted) this.log.line(`  live ${id}: ${n} of ${this.hosts.length} hosts`);
  }
}

export async function inspectHost(host: Host, runtime: 'node' | 'python' | 'none'): Promise<HostState> {
  return parseInspection(
    await mustRun(host, 'reading the deploy root', inspectScript(host.deployTo, runtime), { readonly: true }),
  );
}
