// Task `ssh[:host]`: a shell (or, after `--`, a command) in the live release on one host, through the user's own
// OpenSSH client with the host, port, user, key and known_hosts slipway uses; on the local target, a local shell.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type { HostConfig, ResolvedConfig } from '../config/types.js';
import type { TaskRun } from '../fleet/task-run.js';
import { SlipwayError, UsageError } from '../lib/errors.js';
import { layout } from '../lib/paths.js';
import { commandWords, inLiveRelease, loginShell } from '../scripts/everyday.js';

/** ssh takes at most one argument, a host of the environment. */
export function checkSshArgs(args: string[], config: ResolvedConfig): void {
  const names = config.hosts.map((h) => h.name);
  if (args.length > 1) throw new UsageError(`ssh takes one host at most, got ${args.length}; e.g. ssh:${names[0]}`);
  if (args.length && !names.includes(args[0]))
    throw new UsageError(`ssh: no host "${args[0]}" in environment ${config.environment}; hosts: ${names.join(', ')}`);
}

const expandHome = (p: string) => (p.startsWith('~/') ? path.join(homedir(), p.slice(2)) : p);

/** OpenSSH splits an -o value at spaces: a path holding one is given in double quotes. */
const optionPath = (p: string) => (/\s/.test(p) ? `"${p}"` : p);

/**
 * The OpenSSH command line for a host: the host entry's port, user and key (else ~/.ssh/config's, which ssh reads
 * itself, as slipway does), the same known_hosts file, host keys checked as slipway checks them (an unknown key
 * refused unless --trust-new-hosts, which accepts new keys only; a changed key always refused).
 */
export function sshArgv(
  host: Pick<HostConfig, 'host' | 'port' | 'user' | 'privateKey'>,
  knownHosts: string | undefined,
  trustNewHosts: boolean,
  remoteCommand: string,
  tty: boolean,
): string[] {
  return [
    tty ? '-t' : '-T',
    ...(host.port ? ['-p', String(host.port)] : []),
    ...(host.user ? ['-l', host.user] : []),
    ...(host.privateKey ? ['-i', expandHome(host.privateKey), '-o', 'IdentitiesOnly=yes'] : []),
    ...(knownHosts ? ['-o', `UserKnownHostsFile=${optionPath(expandHome(knownHosts))}`] : []),
    '-o',
    `StrictHostKeyChecking=${trustNewHosts ? 'accept-new' : 'yes'}`,
    '--',
    host.host!,
    remoteCommand,
  ];
}

/** Runs a program with this terminal; resolves with its exit code (128 + n for a signal). */
function interactive(file: string, args: string[], cwd?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    // PWD: a shell then shows the live release as `current`, not as the release it points to.
    const env = cwd ? { ...process.env, PWD: cwd } : process.env;
    const child = spawn(file, args, { stdio: 'inherit', cwd, env });
    child.on('error', (error) =>
      reject(new SlipwayError(`ssh: cannot run ${file}: ${(error as NodeJS.ErrnoException).code ?? error.message}`)),
    );
    child.on('close', (code, signal) => resolve(code ?? 128 + (signal === 'SIGINT' ? 2 : 15)));
  });
}

/** The `ssh` task. */
export async function ssh(run: TaskRun): Promise<void> {
  checkSshArgs(run.args, run.config);
  const chosen = run.args.length ? run.hosts.filter((h) => h.config.name === run.args[0]) : run.hosts;
  if (chosen.length !== 1) {
    const names = run.hosts.map((h) => h.config.name).join(', ');
    throw new UsageError(
      run.args.length
        ? `ssh: host "${run.args[0]}" is not among the selected hosts (${names})`
        : `ssh: which host? ssh:<host>, one of: ${names}`,
    );
  }
  const h = chosen[0].config;
  const current = layout(h.deployTo).current;
  const command = run.options.command;
  const what = command ? `\`${command.join(' ')}\`` : 'the shell';
  // Ctrl-C at this terminal is the program's own (it gets it too): the run goes on until it ends.
  const code = await run.foreground(async () => {
    if (h.local) {
      if (!existsSync(current)) throw new SlipwayError(`ssh: no live release on ${h.name}: ${current} does not exist`);
      return command
        ? interactive(command[0], command.slice(1), current)
        : interactive(process.env.SHELL || '/bin/sh', [], current);
    }
    const remote = inLiveRelease(current, command ? commandWords(command) : loginShell).text;
    const tty = process.stdin.isTTY === true;
    return interactive('ssh', sshArgv(h, run.config.knownHosts, run.options.trustNewHosts === true, remote, tty));
  });
  if (code !== 0) throw new SlipwayError(`ssh: ${what} exited ${code} on ${h.name}`);
}
