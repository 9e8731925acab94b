// Notifications: hooks.onSuccess / hooks.onFailure after a task (the deploy), on the deployer or on the hosts,
// with SLIPWAY_* variables saying what happened. A notification that fails is a warning: it never changes the
// task's outcome (exit code, live release).
import { hostname, userInfo } from 'node:os';
import type { Notification } from '../config/types.js';
import type { HostRun } from '../fleet/host-run.js';
import type { TaskRun } from '../fleet/task-run.js';
import type { Host } from '../hosts/host.js';
import { LocalHost } from '../hosts/local-host.js';
import { hostOutput } from '../lib/log.js';
import { stageCommand } from '../scripts/hooks.js';

type Point = 'onSuccess' | 'onFailure';

/** The distinct values hosts report, space-separated ('' when none): hosts of one deploy normally agree. */
const distinct = (values: Array<string | null | undefined>) => [...new Set(values.filter(Boolean))].join(' ');

/**
 * The variables a notification gets (README "Notifications"): SLIPWAY_TASK, _APPLICATION, _ENVIRONMENT, _OUTCOME,
 * _RELEASE (the new release's id, '' if none was made), _PREVIOUS_RELEASE (live before the deploy; on a host,
 * that host's), _LIVE (live now), _REF, _HOSTS, _DEPLOYER (user@machine) and, on failure, _REASON (the error,
 * secrets redacted).
 */
export function notificationVars(run: TaskRun, point: Point, reason?: string, h?: HostRun) {
  const hosts = h ? [h] : run.hosts;
  return {
    SLIPWAY_TASK: run.options.task ?? '',
    SLIPWAY_APPLICATION: run.config.application,
    SLIPWAY_ENVIRONMENT: run.config.environment,
    SLIPWAY_OUTCOME: point === 'onSuccess' ? 'success' : 'failure',
    SLIPWAY_RELEASE: distinct(hosts.map((x) => x.report.release)),
    // Set by the switch (null: nothing was live); before a switch, what was live when the run read the host.
    SLIPWAY_PREVIOUS_RELEASE: distinct(
      hosts.map((x) => (x.report.previous !== undefined ? x.report.previous : x.stateIfRead?.live)),
    ),
    SLIPWAY_LIVE: distinct(hosts.map((x) => x.report.live ?? x.stateIfRead?.live)),
    SLIPWAY_REF: run.config.ref,
    SLIPWAY_HOSTS: run.hosts.map((x) => x.config.name).join(' '),
    SLIPWAY_DEPLOYER: `${userInfo().username}@${hostname()}`,
    SLIPWAY_REASON: reason === undefined ? '' : run.log.redact(reason),
  };
}

/**
 * Runs one notification on one host (or the deployer), stopped after its timeoutSeconds; a failure is a warning.
 * Stopping it interrupts the host's running commands: after the task's body the notification is the only one.
 */
async function send(run: TaskRun, n: Notification, where: Host, dir: string, env: Record<string, string>) {
  const { script, stdin } = stageCommand({ name: n.name, commands: n.commands, env: { ...n.env, ...env } }, dir);
  const started = performance.now();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void where.interrupt();
  }, n.timeoutSeconds * 1000);
  try {
    const result = await where.exec(script, { stdin, stdinNote: 'the SLIPWAY_* variables' });
    const output = (result.stdout + result.stderr).trim();
    if (output) hostOutput(run.log, where.name, output);
    if (result.code === 0 && !timedOut) return run.log.step(where.name, n.name, performance.now() - started);
    const status = timedOut
      ? `stopped after its timeoutSeconds, ${n.timeoutSeconds}`
      : result.code === null
        ? 'no exit status'
        : `exit ${result.code}`;
    run.log.warn(`notification "${n.name}" failed on ${where.name} (${status}); the deploy's outcome stands`);
  } catch (error) {
    run.log.warn(`notification "${n.name}" failed on ${where.name}: ${(error as Error).message}; the outcome stands`);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs the notifications of one point: each in turn, on the deployer or on its hosts in parallel. Never throws. */
export async function notify(run: TaskRun, point: Point, reason?: string): Promise<void> {
  for (const n of run.config.hooks[point]) {
    if (run.options.dryRun) {
      run.log.line(`would send notification ${point} "${n.name}" (on the ${n.on === 'hosts' ? 'hosts' : 'deployer'})`);
      continue;
    }
    if (n.on === 'deployer') {
      const deployer = new LocalHost('deployer', run.config.projectRoot);
      await send(run, n, deployer, run.config.projectRoot, notificationVars(run, point, reason));
      continue;
    }
    const targets = run.hosts.filter((h) => !n.roles || n.roles.some((r) => h.config.roles.includes(r)));
    await Promise.all(
      targets.map((h) => {
        const host = h.hostIfConnected;
        if (!host) {
          run.log.warn(`notification "${n.name}" not sent on ${h.config.name}: the run never reached that host`);
          return undefined;
        }
        return send(run, n, host, h.paths.root, notificationVars(run, point, reason, h));
      }),
    );
  }
}

/**
 * A task body with notifications: hooks.onSuccess when it ends well, hooks.onFailure (SLIPWAY_REASON: its error)
 * when it fails, then the error goes on unchanged. An interrupted run (Ctrl-C, SIGTERM) sends none: it ends as
 * soon as its cleanup is done.
 */
export function withNotifications(body: (run: TaskRun) => Promise<void>) {
  return async (run: TaskRun): Promise<void> => {
    try {
      await body(run);
    } catch (error) {
      if (!run.interrupted) await notify(run, 'onFailure', (error as Error)?.message ?? String(error));
      throw error;
    }
    await notify(run, 'onSuccess');
  };
}
