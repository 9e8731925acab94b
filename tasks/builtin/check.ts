// Task `check`: everything a deploy needs, per host in one round trip, each ✓ or ✗ with how to fix it.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ResolvedConfig } from '../config/types.js';
import type { TaskRun } from '../fleet/task-run.js';
import { HostsUnreachable } from '../hosts/connect.js';
import { mustRun } from '../hosts/host.js';
import { exitCodeOf, SlipwayError } from '../lib/errors.js';
import { newReleaseId } from '../release/rules.js';
import { checkBuildHost } from './check-build-host.js';
import { checkScript, checkVerdicts, type EnvFiles, parseCheck, sshFix, type Verdict } from '../scripts/check.js';

/** The environment's `.env.<environment>` (and its `.example`) in the project root: which keys each holds. */
async function envFiles(config: ResolvedConfig): Promise<EnvFiles> {
  const { parse } = await import('dotenv');
  const file = `.env.${config.environment}`;
  const keysOf = (name: string) => {
    const full = path.join(config.projectRoot, name);
    return existsSync(full) ? Object.keys(parse(readFileSync(full, 'utf8'))) : null;
  };
  const example = keysOf(`${file}.example`);
  return { file, keys: keysOf(file), ...(example ? { example: { file: `${file}.example`, keys: example } } : {}) };
}

/**
 * `check`: the config loads, every host answers over SSH with a known host key, and what a deploy needs
 * there works for the deploy user: its deploy root, the lock, the runtime, each service command as a deploy
 * runs it (the sudo rules, nginx -t, supervisorctl), the health check URL and the environment's .env file.
 * A host where any of it fails is ✗, each failed verdict with its fix; the task then exits 1. With artifacts.buildOn,
 * the build host too (check-build-host.ts).
 */
export async function check(run: TaskRun): Promise<void> {
  const failed = await checkHosts(run).then(
    () => undefined,
    (error: unknown) => error,
  );
  // artifacts.buildOn: the build host too, whatever the hosts' verdicts (but not past a config error).
  if (failed === undefined || exitCodeOf(failed) !== 2) {
    const build = await checkBuildHost(run).then(
      () => undefined,
      (error: unknown) => error,
    );
    if (failed === undefined && build !== undefined) throw build;
    if (failed instanceof Error && build instanceof Error)
      throw new SlipwayError(`${failed.message}\n${build.message}`);
  }
  if (failed !== undefined) throw failed;
}

async function checkHosts(run: TaskRun): Promise<void> {
  run.log.line(`config: valid (${run.config.application}, environment ${run.config.environment})`);
  const env = await envFiles(run.config);
  // Any id will do: sudo is asked about the commands, nothing is installed.
  const releaseId = newReleaseId(new Date(), '0000000');
  const verdicts = new Map<string, Verdict[]>();
  try {
    await run.each('check', async (h) => {
      const { dependencies, services, cutover } = run.config;
      const script = checkScript(h.paths.root, dependencies.type, services, releaseId, cutover.strategy);
      const found = parseCheck(await mustRun(h.host, 'checking the host', script, { readonly: true }));
      h.state = found.state;
      const checks = checkVerdicts({
        config: run.config,
        address: h.host.address,
        root: h.paths.root,
        releaseId,
        found,
        env,
      });
      verdicts.set(h.host.name, checks);
      Object.assign(h.report, {
        reachable: true,
        writable: found.state.writable,
        lock: found.lock?.owner ?? null,
        live: found.state.live,
        checks,
      });
      const failed = checks.filter((v) => v.ok === false);
      if (failed.length)
        throw new Error(`${h.host.name}: ${failed.map((v) => v.name).join(', ')} failed (see the ✗ lines)`);
      const owner = found.lock?.owner;
      const lock = owner
        ? `locked by ${owner.user}@${owner.machine} (${owner.task} since ${owner.startedAt})`
        : 'unlocked';
      return `${h.host.address}, writable, ${lock}, live ${found.state.live ?? '(none)'}`;
    });
  } catch (error) {
    if (!(error instanceof HostsUnreachable)) throw error;
    // Connecting failed (a host's key, its user, its sshd): one ✗ per host it names, with what to do.
    for (const line of error.message.split('\n')) {
      const match = /^(\S+): (.*)$/.exec(line);
      const host = run.hosts.find((h) => h.config.name === match?.[1]);
      if (!match || !host) continue;
      verdicts.set(host.config.name, [
        { name: 'ssh', ok: false, detail: match[2], fix: sshFix(match[2], host.config.user) },
      ]);
    }
    throw new SlipwayError(`check: cannot connect (see the ✗ lines):\n${error.message}`);
  } finally {
    for (const [host, found] of verdicts) for (const v of found) run.log.verdict(host, v.name, v.ok, v.detail, v.fix);
  }
}
