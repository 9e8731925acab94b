// Task `setup`: prepares fresh hosts for deploys, over SSH as the admin user (setup.user: root, or a user with
// passwordless sudo), in one round trip per host: what scripts/setup.ts does, printed as it changed it.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type { HostConfig, ResolvedConfig } from '../config/types.js';
import type { TaskRun } from '../fleet/task-run.js';
import { CommandFailed, mustRun } from '../hosts/host.js';
import { ConfigError, SlipwayError, UsageError } from '../lib/errors.js';
import { count } from '../lib/log.js';
import { sharedItems } from '../lib/paths.js';
import { helperConfig, helperSudoers } from '../scripts/helper-setup.js';
import { helperSubcommands } from '../scripts/services-helper.js';
import { asAdmin, PUBLIC_KEY, parseSetupOutput, type SetupSpec, setupScript, USER_NAME } from '../scripts/setup.js';

const expandHome = (p: string) => (p.startsWith('~/') ? path.join(homedir(), p.slice(2)) : path.resolve(p));

/** The public key files for a host's deploy user: setup.authorizedKeys, else its privateKey's `.pub`. */
function keyFiles(h: HostConfig, config: ResolvedConfig): string[] {
  if (config.setup.authorizedKeys) return config.setup.authorizedKeys.map(expandHome);
  if (h.privateKey) return [`${expandHome(h.privateKey)}.pub`];
  throw new ConfigError(
    `setup: ${h.name} has no privateKey, so there is no public key to authorize for ${h.user}: ` +
      "set setup.authorizedKeys (e.g. ['~/.ssh/id_ed25519.pub'])",
  );
}

/** The key lines of the public key files; a private key or anything else is refused (exit 2). */
function readPublicKeys(files: string[]): string[] {
  return files.flatMap((file) => {
    if (!existsSync(file))
      throw new ConfigError(`setup: public key file ${file} not found (setup.authorizedKeys, or privateKey + ".pub")`);
    const text = readFileSync(file, 'utf8');
    if (/PRIVATE KEY/.test(text))
      throw new ConfigError(`setup: ${file} is a private key; setup.authorizedKeys takes public keys (.pub)`);
    const keys = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const bad = keys.find((k) => !PUBLIC_KEY.test(k));
    if (bad !== undefined || !keys.length)
      throw new ConfigError(`setup: ${file}: expected OpenSSH public keys, one a line ("ssh-ed25519 AAAA… comment")`);
    return keys;
  });
}

/** Before any host is touched: what setup would need and the config does not give (exit 2). */
export function checkSetup(args: string[], config: ResolvedConfig): void {
  if (args.length) throw new UsageError(`setup takes no arguments, got "${args.join(',')}"`);
  const services = config.services;
  if (services && !services.helper)
    throw new ConfigError(
      'setup installs the root-owned helper for nginx and supervisor: set services.helper ' +
        "(e.g. '/usr/local/sbin/slipway-services'); for services without it, prepare hosts as README's " +
        '"Preparing a server" says',
    );
  if (config.runAs === 'root') throw new ConfigError('setup: runAs must not be root (the helper refuses it)');
  if (config.runAs !== undefined && !USER_NAME.test(config.runAs))
    throw new ConfigError(`setup: runAs "${config.runAs}" is not a user name useradd takes ([a-z_][a-z0-9_-]*)`);
  for (const h of config.hosts.filter((x) => !x.local)) {
    if (!h.user)
      throw new ConfigError(`setup: ${h.name} has no user: set the deploy user it creates (hosts[].user, e.g. deploy)`);
    if (h.user === 'root' || !USER_NAME.test(h.user))
      throw new ConfigError(
        `setup: ${h.name}'s user "${h.user}" must be a user name useradd takes ([a-z_][a-z0-9_-]*), not root`,
      );
    readPublicKeys(keyFiles(h, config));
  }
}

/** setup connects as the admin user, with its own key if given (host keys are verified as for any run). */
export function setupConnection(h: HostConfig, config: ResolvedConfig): HostConfig {
  if (h.local) return h;
  const s = config.setup;
  return {
    ...h,
    user: s.user,
    privateKey: s.privateKey ?? h.privateKey,
    passphraseEnv: s.privateKey ? s.passphraseEnv : (s.passphraseEnv ?? h.passphraseEnv),
  };
}

/** server/slipway-services, found above this module (the repository, the installed package, a bundle beside it). */
function helperSource(): Buffer {
  for (let dir = import.meta.dirname; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'server', 'slipway-services');
    if (existsSync(file)) return readFileSync(file);
    if (path.dirname(dir) === dir) throw new SlipwayError('setup: server/slipway-services not found beside slipway');
  }
}

function specFor(h: HostConfig, config: ResolvedConfig, helperText: Buffer | undefined): SetupSpec {
  const user = h.user!;
  const services = config.services;
  const helper = services?.helper;
  const { dirs, files } = sharedItems(config.shared);
  const paths = config.setup.helper;
  return {
    user,
    deployTo: h.deployTo,
    authorizedKeys: readPublicKeys(keyFiles(h, config)),
    shared: { dirs, files },
    runtime: config.dependencies.type,
    runAs: config.runAs && config.runAs !== user ? config.runAs : undefined,
    helper:
      helper && helperText
        ? {
            path: helper.command,
            bytes: helperText.length,
            sha256: createHash('sha256').update(helperText).digest('hex'),
            configFile: `/etc/slipway/${helper.application}.conf`,
            config: helperConfig({
              deployUser: user,
              deployTo: h.deployTo,
              program: services.supervisor?.name,
              runAs: config.runAs ?? user,
              nginx: Boolean(services.nginx),
              supervisor: Boolean(services.supervisor),
              helper: paths,
            }),
            sudoersFile: `/etc/sudoers.d/slipway-${helper.application}`,
            sudoers: helperSudoers(user, helper.command, helper.application, helperSubcommands(services, true)),
            dirs: [
              ...(services.nginx ? [path.posix.dirname(paths.site), path.posix.dirname(paths.enabled)] : []),
              ...(services.supervisor ? [path.posix.dirname(paths.programFile)] : []),
              ...paths.allowedPaths.slice(0, 1),
            ],
            programs: [
              ...(services.nginx ? [paths.nginxTest.split(' ')[0]] : []),
              ...(services.supervisor ? [paths.supervisorctl.split(' ')[0]] : []),
            ],
          }
        : undefined,
  };
}

/**
 * `setup`: on each SSH host, as the admin user, whatever of the deploy user, its keys, the deploy root,
 * the shared items, the helper with its config and sudo rule, and the include dirs is not as it should
 * be is made so and printed; then what cannot be installed here (the runtime, nginx, sudo) is named with
 * how to get it (exit 1). A second run changes nothing and says so.
 */
export async function setup(run: TaskRun): Promise<void> {
  const helperText = run.config.services?.helper ? helperSource() : undefined;
  const admin = run.config.setup.user;
  const builder = run.config.artifacts?.buildOn?.host;
  if (builder && !run.hosts.some((h) => h.config.name === builder.name))
    run.log.warn(
      `setup: ${builder.name}, the build host (artifacts.buildOn), is not prepared by setup: give it ` +
        `${builder.user ? `the user ${builder.user}` : 'its user'} with your key, node and npm by hand ` +
        '(README, "Building on a build host"); `check` checks it',
    );
  await run.each('setup', async (h) => {
    if (h.config.local) return { skipped: 'the local target: nothing to prepare' };
    const spec = specFor(h.config, run.config, helperText);
    const output = await mustRun(h.host, 'setup', asAdmin(setupScript(spec), admin), {
      stdin: helperText,
      stdinNote: helperText && `the helper (${helperText.length} bytes)`,
    }).catch((error: Error) => {
      const refused = error instanceof CommandFailed ? parseSetupOutput(error.result.stdout).refused : undefined;
      throw refused ? new SlipwayError(`${h.host.name}: setup stopped: ${refused}`) : error;
    });
    if (run.options.dryRun) return `would prepare it as ${admin}, running the script above`;
    const outcome = parseSetupOutput(output);
    for (const change of outcome.changed) run.log.detail(h.host.name, `changed: ${change}`);
    if (outcome.missing.length)
      throw new SlipwayError(outcome.missing.map((m) => `${h.host.name}: ${m.what} is missing: ${m.fix}`).join('\n'));
    const checked = outcome.changed.length + outcome.unchanged.length;
    return outcome.changed.length
      ? `${count(outcome.changed.length, 'change')} (${checked} checked)`
      : `nothing changed (${checked} checked, all as they should be)`;
  });
}
