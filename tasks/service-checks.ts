// What `check` tries on a host beyond reading its state: each service command a deploy runs, run
// read-only as the deploy runs it (the sudo rules by `sudo -l <command>`, `nginx -t`, `supervisorctl
// status`), in one round trip. Every verdict that fails says how to fix it.
import type { Services } from './core/config.js';
import type { Shell } from './core/sh.js';
import { raw, script, sh } from './core/sh.js';
import { privilegedCommands } from './services.js';

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
  return sh`out=$( (${command}) 2>&1 </dev/null ); printf '@@check %s %s\\n' "$?" ${name}; printf '%s\\n' "$out" | tail -n 5 | sed 's/^/@@| /'`;
}

/** Without sudo the deploy user writes the site, its link and the program itself: their folders (or the nearest that exists) and files. */
function writableProbe(targets: string[]): Shell {
  return sh`bad=; for t in ${targets}; do d=\${t%/*}; while [ ! -e "$d" ]; do d=\${d%/*}; d=\${d:-/}; done
  if [ ! -w "$d" ] || { [ -e "$t" ] && [ ! -w "$t" ]; }; then bad="$bad $t"; fi; done; [ -z "$bad" ] || { echo "not writable:$bad"; exit 1; }`;
}

export function serviceCheckScript(services: Services | undefined, releaseDir: string): Shell {
  const lines: Shell[] = [sh`echo "@@user $(id -un)"`];
  if (services) {
    const prefix = services.sudo ? raw(`${services.sudo} `) : raw('');
    if (services.sudo && isSudo(services.sudo)) {
      const commands = [...new Set(privilegedCommands(services, releaseDir).map((c) => c.text))];
      lines.push(...commands.map((c, i) => probe(`sudo ${i}`, sh`${raw(services.sudo)} -l ${raw(c)}`)));
    } else if (!services.sudo) {
      const targets = [services.nginx?.site, services.nginx?.enabled, services.supervisor?.program].filter((t): t is string => Boolean(t));
      lines.push(probe('configs', writableProbe(targets)));
    }
    if (services.nginx) lines.push(probe('nginx', sh`${prefix}${raw(services.nginx.test)}`));
    if (services.supervisor) lines.push(probe('supervisor', sh`${prefix}${raw(services.supervisor.ctl)} status`));
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
    if (check) probes.set(check[2], (last = { code: Number(check[1]), output: [] }));
    else if (line.startsWith('@@| ') && last && line.length > 4) last.output.push(line.slice(4));
    else if (line.startsWith('@@user ')) user = line.slice(7).trim();
  }
  return { user, probes };
}

/** The line of a command's output that says what went wrong. */
function gist(p: Probe): string {
  return p.output.find((l) => /\[(emerg|alert|crit)\]|error|denied|refused|not found|no such|password|not allowed/i.test(l)) ?? p.output.at(-1) ?? `exit ${p.code}`;
}

const notFound = (p: Probe) => p.code === 127 || p.output.some((l) => /command not found/.test(l));
const sudoRefused = (p: Probe) => p.output.some((l) => /^sudo: /.test(l));

function sudoVerdict(services: Services, releaseDir: string, probes: Map<string, Probe>, user: string, app: string): Verdict {
  const commands = [...new Set(privilegedCommands(services, releaseDir).map((c) => c.text))];
  const refused = commands.map((c, i) => ({ command: c, probe: probes.get(`sudo ${i}`) })).filter((r) => !r.probe || r.probe.code !== 0);
  const name = `sudo rules (${services.sudo})`;
  if (!refused.length) return { name, ok: true, detail: `allow all ${commands.length} commands a deploy runs` };
  const first = refused[0];
  const detail = `refuse ${refused.length} of ${commands.length} commands a deploy runs, e.g. ${first.command}: ${first.probe ? gist(first.probe) : 'not asked'}`;
  if (first.probe && notFound(first.probe) && !sudoRefused(first.probe)) {
    return { name, ok: false, detail, fix: `install sudo on the host (apt-get install sudo), or set services.sudo to the prefix you use` };
  }
  const programs = [...new Set(refused.map((r) => r.command.split(' ')[0]))].join(', ');
  return {
    name,
    ok: false,
    detail,
    fix: `let ${user} run them as root without a password: README's sudo rules ("Preparing a server") in /etc/sudoers.d/${app} (visudo -f); refused: ${programs}`,
  };
}

function nginxVerdict(services: Services, p: Probe | undefined, user: string): Verdict {
  const command = `${services.sudo ? `${services.sudo} ` : ''}${services.nginx!.test}`;
  const name = 'nginx -t';
  if (p?.code === 0) return { name, ok: true, detail: `${command}: configuration ok` };
  const detail = `${command}: ${p ? gist(p) : 'not run'}`;
  if (!p) return { name, ok: false, detail };
  if (sudoRefused(p)) return { name, ok: false, detail, fix: `let ${user} run it through sudo (see the sudo rules above)` };
  if (notFound(p)) return { name, ok: false, detail, fix: `nginx is not on ${user}'s PATH over SSH: set services.nginx.test to its full path (e.g. /usr/sbin/nginx -t)` };
  if (p.output.some((l) => /Permission denied/.test(l))) {
    return { name, ok: false, detail, fix: `${user} may not read or write what nginx -t needs: set services.sudo ('sudo -n') with README's sudo rules` };
  }
  return { name, ok: false, detail, fix: 'the installed nginx configuration does not pass nginx -t: fix what nginx names above' };
}

function supervisorVerdict(services: Services, p: Probe | undefined, user: string): Verdict {
  const command = `${services.sudo ? `${services.sudo} ` : ''}${services.supervisor!.ctl} status`;
  const name = 'supervisorctl status';
  // 3: supervisord answered, some program is not running (status' business, not check's).
  if (p && (p.code === 0 || p.code === 3)) return { name, ok: true, detail: `${command}: supervisord answers` };
  const detail = `${command}: ${p ? gist(p) : 'not run'}`;
  if (!p) return { name, ok: false, detail };
  if (sudoRefused(p)) return { name, ok: false, detail, fix: `let ${user} run it through sudo (see the sudo rules above)` };
  if (notFound(p)) return { name, ok: false, detail, fix: `install supervisor, or set services.supervisor.ctl to its full path` };
  if (p.output.some((l) => /Permission denied/.test(l))) {
    return { name, ok: false, detail, fix: `${user} may not use supervisord's socket: set services.sudo with README's sudo rules, or [unix_http_server] chown=${user}` };
  }
  return {
    name,
    ok: false,
    detail,
    fix: 'supervisord is not running or listens elsewhere: start it (systemctl start supervisor), or point services.supervisor.ctl at its config (supervisorctl -c <file>)',
  };
}

/** check's verdicts for a host: its deploy root (from the inspection), then each service command. */
export function serviceVerdicts(input: {
  services: Services | undefined;
  application: string;
  root: string;
  writable: boolean;
  releaseDir: string;
  output: string;
}): Verdict[] {
  const { services, root, output } = input;
  const { user, probes } = parseProbes(output);
  const verdicts: Verdict[] = [
    input.writable
      ? { name: 'deploy root', ok: true, detail: `${root} writable by ${user}` }
      : { name: 'deploy root', ok: false, detail: `${root} NOT writable by ${user}`, fix: `as root: install -d -o ${user} -g ${user} ${root} (or give ${user} write access to it)` },
  ];
  if (!services) return verdicts;
  if (services.sudo && isSudo(services.sudo)) verdicts.push(sudoVerdict(services, input.releaseDir, probes, user, input.application));
  else if (services.sudo) verdicts.push({ name: 'sudo rules', ok: 'skipped', detail: `services.sudo "${services.sudo}" is not sudo: its rules are not checked` });
  else {
    const p = probes.get('configs');
    verdicts.push(
      p?.code === 0
        ? { name: 'config files', ok: true, detail: `writable by ${user} (no services.sudo)` }
        : { name: 'config files', ok: false, detail: p ? gist(p) : 'not checked', fix: `make them writable by ${user}, or set services.sudo ('sudo -n') with README's sudo rules` },
    );
  }
  if (services.nginx) verdicts.push(nginxVerdict(services, probes.get('nginx'), user));
  if (services.supervisor) verdicts.push(supervisorVerdict(services, probes.get('supervisor'), user));
  return verdicts;
}
