// What `check` tries on a host beyond reading its state: each service command a deploy runs, run
// read-only as the deploy runs it (the sudo rules by `sudo -l <command>`, `nginx -t`, `supervisorctl
// status`), in one round trip. Every verdict that fails says how to fix it. Through the helper that
// is its one sudo rule (asked for each call a deploy makes) and its own read-only `test` and `status`.
import type { Cutover, Services } from '../config/types.js';
import { raw, script, sh, type Shell } from '../lib/sh.js';
import { privilegedCommands, statusCommands } from './services.js';
import { helperSubcommands } from './services-helper.js';
import { helperSudoers } from './helper-setup.js';

export interface Verdict {
  name: string;
  ok: boolean | 'skipped';
  detail: string;
  fix?: string;
}

/** Whether services.sudo is sudo (with options), which can be asked about a command with -l. */
const isSudo = (prefix: string) => /^(\S*\/)?sudo(\s|$)/.test(prefix.trim());

/** Runs a command, then prints `@@check <exit> <name>` and its last output lines as `@@| …`. */
function probe(name: string, command: Shell): Shell {
  return script(
    sh`out=$( (${command}) 2>&1 </dev/null )`,
    sh`printf '@@check %s %s\\n' "$?" ${name}`,
    sh`printf '%s\\n' "$out" | tail -n 5 | sed 's/^/@@| /'`,
  );
}

/**
 * Without sudo the deploy user writes the site, its link and the program itself: their folders (or the
 * nearest that exists) and files.
 */
function writableProbe(targets: string[]): Shell {
  return script(
    sh`bad=`,
    sh`for t in ${targets}; do`,
    sh`  d=\${t%/*}`,
    sh`  while [ ! -e "$d" ]; do`,
    sh`    d=\${d%/*}`,
    sh`    d=\${d:-/}`,
    sh`  done`,
    sh`  if [ ! -w "$d" ] || { [ -e "$t" ] && [ ! -w "$t" ]; }; then`,
    sh`    bad="$bad $t"`,
    sh`  fi`,
    sh`done`,
    sh`if [ -n "$bad" ]; then`,
    sh`  echo "not writable:$bad"`,
    sh`  exit 1`,
    sh`fi`,
  );
}

/**
 * The privileged commands a deploy of `releaseId` runs, each once, as sudo -l is asked about them (blue-green:
 * its slots' supervisorctl calls, not the one program's).
 */
const askedCommands = (services: Services, root: string, releaseId: string, strategy?: Strategy) => [
  ...new Set(privilegedCommands(services, root, releaseId, strategy).map((c) => c.text)),
];

type Strategy = Cutover['strategy'];

export function serviceCheckScript(
  services: Services | undefined,
  root: string,
  releaseId: string,
  strategy?: Strategy,
): Shell {
  const lines: Shell[] = [sh`echo "@@user $(id -un)"`];
  if (services) {
    const { nginxTest, supervisor } = statusCommands(services);
    if (services.sudo && isSudo(services.sudo)) {
      const commands = askedCommands(services, root, releaseId, strategy);
      lines.push(...commands.map((c, i) => probe(`sudo ${i}`, sh`${raw(services.sudo)} -l ${raw(c)}`)));
    } else if (!services.sudo) {
      const targets = [services.nginx?.site, services.nginx?.enabled, services.supervisor?.program].filter(
        (t): t is string => Boolean(t),
      );
      lines.push(probe('configs', writableProbe(targets)));
    }
    if (nginxTest) lines.push(probe('nginx', nginxTest));
    if (supervisor) lines.push(probe('supervisor', supervisor));
  }
  return script(...lines);
}

interface Probe {
  code: number;
  output: string[];
}

function parseProbes(output: string): { user: string; probes: Map<string, Probe> } {
  const probes = new Map<string, Probe>();
  let user = '';
  let last: Probe | undefined;
  for (const line of output.split('\n')) {
    const check = /^@@check (\d+) (.+)$/.exec(line);
    if (check) {
      last = { code: Number(check[1]), output: [] };
      probes.set(check[2], last);
    } else if (line.startsWith('@@| ') && last && line.length > 4) last.output.push(line.slice(4));
    else if (line.startsWith('@@user ')) user = line.slice(7).trim();
  }
  return { user, probes };
}

/** The line of a command's output that says what went wrong. */
function gist(p: Probe): string {
  const telling = /\[(emerg|alert|crit)\]|error|denied|refused|not found|no such|password|not allowed/i;
  return p.output.find((l) => telling.test(l)) ?? p.output.at(-1) ?? `exit ${p.code}`;
}

const notFound = (p: Probe) => p.code === 127 || p.output.some((l) => /command not found/.test(l));

const sudoRefused = (p: Probe) => p.output.some((l) => /^sudo: /.test(l));

const SUDO_RULES =
  `set services.helper up as README's "Preparing a server" says ` +
  `(or services.sudo ('sudo -n') with its broad sudo rules)`;

/** With the helper: as root, README's "Preparing a server" (the helper, its config, its one sudo rule). */
function helperSetup(services: Services, user: string, app: string): string {
  const helper = services.helper!.command;
  const rule = helperSudoers(user, helper, app, helperSubcommands(services, true)).trim().split('\n').at(-1);
  return (
    `as root, README's "Preparing a server": install server/slipway-services as ${helper}, ` +
    `its config /etc/slipway/${app}.conf, and its sudo rule in /etc/sudoers.d/slipway-${app}: "${rule}"`
  );
}

function sudoVerdict(
  services: Services,
  root: string,
  releaseId: string,
  probes: Map<string, Probe>,
  user: string,
  app: string,
  strategy?: Strategy,
): Verdict {
  const commands = askedCommands(services, root, releaseId, strategy);
  const refused = commands
    .map((c, i) => ({ command: c, probe: probes.get(`sudo ${i}`) }))
    .filter((r) => r.probe?.code !== 0);
  const name = services.helper
    ? `sudo rule (${services.sudo} ${services.helper.command})`
    : `sudo rules (${services.sudo})`;
  if (!refused.length) return { name, ok: true, detail: `allow all ${commands.length} commands a deploy runs` };
  const { command, probe } = refused[0];
  const detail =
    `refuse ${refused.length} of ${commands.length} commands a deploy runs, ` +
    `e.g. ${command}: ${probe ? gist(probe) : 'not asked'}`;
  if (probe && notFound(probe) && !sudoRefused(probe)) {
    return {
      name,
      ok: false,
      detail,
      fix: 'install sudo on the host (apt-get install sudo), or set services.sudo to the prefix you use',
    };
  }
  if (services.helper) return { name, ok: false, detail, fix: helperSetup(services, user, app) };
  const programs = [...new Set(refused.map((r) => r.command.split(' ')[0]))].join(', ');
  const rules = `README's sudo rules ("Preparing a server") in /etc/sudoers.d/${app} (visudo -f)`;
  // Some allowed, some not: narrower rules than README's; each refused command, to add to them as it is.
  const each = refused.length < commands.length ? refused.map((r) => r.command).join('; ') : programs;
  const slots = strategy === 'blue-green' ? ` (blue-green: ${services.supervisor?.name}-blue and -green)` : '';
  return {
    name,
    ok: false,
    detail,
    fix: `let ${user} run them as root without a password: ${rules}${slots}; refused: ${each}`,
  };
}

/** A service command run as a deploy runs it: the fixes for failures every such command shares, then its own. */
function commandVerdict(
  name: string,
  command: string,
  p: Probe | undefined,
  user: string,
  own: { passed: (p: Probe) => boolean; ok: string; notFound: string; denied: string; other: string },
): Verdict {
  if (p && own.passed(p)) return { name, ok: true, detail: `${command}: ${own.ok}` };
  const detail = `${command}: ${p ? gist(p) : 'not run'}`;
  const fix = !p
    ? undefined
    : sudoRefused(p)
      ? `let ${user} run it through sudo (see the sudo rule verdict above)`
      : notFound(p)
        ? own.notFound
        : p.output.some((l) => /Permission denied/.test(l))
          ? own.denied
          : own.other;
  return { name, ok: false, detail, fix };
}

/** What to do when the helper's own `test` or `status` fails: its config, or the daemon it names. */
const helperFix = (services: Services, user: string, app: string, daemon: string) => {
  const config = `/etc/slipway/${app}.conf`;
  return {
    notFound: helperSetup(services, user, app),
    denied: `the helper runs as root: fix what it names above in ${config} (README's "Preparing a server")`,
    other: `fix what the helper names above: its config ${config}, or ${daemon}`,
  };
};

function nginxVerdict(services: Services, command: Shell, p: Probe | undefined, user: string, app: string): Verdict {
  return commandVerdict('nginx -t', command.text, p, user, {
    passed: (probe) => probe.code === 0,
    ok: 'configuration ok',
    ...(services.helper
      ? helperFix(services, user, app, 'the installed nginx configuration nginx_test rejects')
      : {
          notFound:
            `nginx is not on ${user}'s PATH over SSH: ` +
            'set services.nginx.test to its full path (e.g. /usr/sbin/nginx -t)',
          denied: `${user} may not read or write what nginx -t needs: ${SUDO_RULES}`,
          other: 'the installed nginx configuration does not pass nginx -t: fix what nginx names above',
        }),
  });
}

function supervisorVerdict(
  services: Services,
  command: Shell,
  p: Probe | undefined,
  user: string,
  app: string,
): Verdict {
  return commandVerdict('supervisorctl status', command.text, p, user, {
    // 3: supervisord answered, the program is not running (status' business, not check's); 4 with
    // "no such process": it answered, the program is not installed yet (a first deploy installs it).
    passed: (probe) =>
      probe.code === 0 || probe.code === 3 || (probe.code === 4 && probe.output.some((l) => /no such process/.test(l))),
    ok: 'supervisord answers',
    ...(services.helper
      ? helperFix(services, user, app, 'start supervisord (systemctl start supervisor)')
      : {
          notFound: 'install supervisor, or set services.supervisor.ctl to its full path',
          denied: `${user} may not use supervisord's socket: ${SUDO_RULES}, or [unix_http_server] chown=${user}`,
          other:
            'supervisord is not running or listens elsewhere: start it (systemctl start supervisor), ' +
            'or point services.supervisor.ctl at its config (-c <file>)',
        }),
  });
}

/** check's verdicts for a host: its deploy root (from the inspection), then each service command. */
export function serviceVerdicts(input: {
  services: Services | undefined;
  application: string;
  root: string;
  writable: boolean;
  releaseId: string;
  output: string;
  strategy?: Strategy;
}): Verdict[] {
  const { services, root, output } = input;
  const { user, probes } = parseProbes(output);
  const fixRoot = `as root: install -d -o ${user} -g ${user} ${root} (or give ${user} write access to it)`;
  const verdicts: Verdict[] = [
    input.writable
      ? { name: 'deploy root', ok: true, detail: `${root} writable by ${user}` }
      : { name: 'deploy root', ok: false, detail: `${root} NOT writable by ${user}`, fix: fixRoot },
  ];
  if (!services) return verdicts;
  const configs = probes.get('configs');
  if (services.sudo && isSudo(services.sudo))
    verdicts.push(sudoVerdict(services, root, input.releaseId, probes, user, input.application, input.strategy));
  else if (services.sudo)
    verdicts.push({
      name: 'sudo rules',
      ok: 'skipped',
      detail: `services.sudo "${services.sudo}" is not sudo: not checked`,
    });
  else if (configs?.code === 0)
    verdicts.push({ name: 'config files', ok: true, detail: `writable by ${user} (no services.sudo)` });
  else {
    const detail = configs ? gist(configs) : 'not checked';
    verdicts.push({ name: 'config files', ok: false, detail, fix: `make them writable by ${user}, or ${SUDO_RULES}` });
  }
  const { nginxTest, supervisor } = statusCommands(services);
  if (nginxTest) verdicts.push(nginxVerdict(services, nginxTest, probes.get('nginx'), user, input.application));
  if (supervisor)
    verdicts.push(supervisorVerdict(services, supervisor, probes.get('supervisor'), user, input.application));
  return verdicts;
}
