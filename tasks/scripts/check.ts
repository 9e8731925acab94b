// `check`'s one script per host and its verdicts: the host's state (inspect), whose deploy root it is, the
// lock, the runtime, the live release's .env, and each service command a deploy runs (service-checks.ts),
// all in one round trip; plus what the config alone says (the health check URL's shape, the .env file).
// Every verdict that fails says how to fix it.
import type { ResolvedConfig, Services } from '../config/types.js';
import { layout, ROOT_MARK } from '../lib/paths.js';
import { script, sh, type Shell } from '../lib/sh.js';
import { STALE_SECONDS, readOwnerScript } from '../lock/remote-lock.js';
import { parseOwner } from '../lock/owner.js';
import type { HostState } from '../release/state.js';
import { type EnvFiles, envVerdict, healthcheckVerdict } from './config-checks.js';
import { inspectScript, parseInspection } from './inspect.js';
import { serviceCheckScript, serviceVerdicts, type Verdict } from './service-checks.js';

export type { EnvFiles } from './config-checks.js';
export type { Verdict } from './service-checks.js';

/** The fix for what `setup` prepares (it connects as setup.user, root by default). */
const SETUP = 'run `setup` (it connects as setup.user)';

export function checkScript(
  deployTo: string,
  runtime: ResolvedConfig['dependencies']['type'],
  services: Services | undefined,
  releaseId: string,
  strategy?: ResolvedConfig['cutover']['strategy'],
): Shell {
  const p = layout(deployTo);
  return script(
    inspectScript(deployTo, runtime),
    // Whose folder the deploy root is: slipway acts only in one it marked (or may mark: missing, empty, older).
    sh`if [ -e ${p.rootMark} ]; then echo '@@root marked'`,
    sh`elif [ ! -e ${p.root} ]; then echo '@@root missing'`,
    sh`elif [ -z "$(ls -A -- ${p.root} 2>/dev/null)" ]; then echo '@@root empty'`,
    sh`elif [ -d ${p.releases} ] && [ -f ${p.revisions} ]; then echo '@@root older'`,
    sh`else echo '@@root foreign'; fi`,
    sh`owner=$(${readOwnerScript(deployTo)} 2>/dev/null | head -c 4096 | tr -d '\\n')`,
    sh`if [ -n "$owner" ]; then`,
    sh`  echo "@@lock $owner"`,
    sh`  echo "@@lockage $(( $(date +%s) - $(stat -c %Y ${p.lock} 2>/dev/null || date +%s) ))"`,
    sh`fi`,
    runtime === 'node' ? sh`echo "@@npm $(npm --version 2>/dev/null)"` : undefined,
    runtime === 'python' ? sh`python3 -c 'import venv, ensurepip' 2>/dev/null && echo '@@venv yes'` : undefined,
    // The live release's .env is a link to shared/.env: it must lead somewhere.
    sh`if [ -L ${p.current}/.env ]; then`,
    sh`  if [ -e ${p.current}/.env ]; then echo '@@dotenv linked'; else echo '@@dotenv dangling'; fi`,
    sh`fi`,
    serviceCheckScript(services, deployTo, releaseId, strategy),
    sh`true`,
  );
}

export interface CheckedHost {
  state: HostState;
  root: 'marked' | 'missing' | 'empty' | 'older' | 'foreign';
  lock: { owner: ReturnType<typeof parseOwner>; ageSeconds: number } | null;
  npm: string;
  venv: boolean;
  dotenv: 'linked' | 'dangling' | 'none';
  output: string;
}

export function parseCheck(output: string): CheckedHost {
  const value = (key: string) => new RegExp(`^@@${key} ?(.*)$`, 'm').exec(output)?.[1]?.trim();
  const owner = value('lock');
  return {
    state: parseInspection(output),
    root: (value('root') as CheckedHost['root']) ?? 'missing',
    lock: owner ? { owner: parseOwner(owner), ageSeconds: Number(value('lockage') ?? 0) } : null,
    npm: value('npm') ?? '',
    venv: value('venv') === 'yes',
    dotenv: (value('dotenv') as CheckedHost['dotenv']) ?? 'none',
    output,
  };
}

function rootVerdict(root: string, found: CheckedHost, writable: Verdict, setup: boolean): Verdict {
  if (found.root === 'foreign')
    return {
      name: 'deploy root',
      ok: false,
      detail: `${root} is not empty and has no ${ROOT_MARK} mark: slipway changes nothing in it`,
      fix: `point deployTo at a new or empty folder (if an older slipway deployed there: touch ${root}/${ROOT_MARK})`,
    };
  if (!writable.ok && setup)
    return { ...writable, fix: `${SETUP}, or as root: ${writable.fix?.replace(/^as root: /, '')}` };
  if (!writable.ok) return writable;
  const how = {
    marked: '',
    missing: ', not there yet (the first deploy makes it)',
    empty: ', empty',
    older: ", an older slipway's (the next deploy marks it)",
  };
  return { ...writable, detail: `${writable.detail}${how[found.root]}` };
}

function lockVerdict(found: CheckedHost): Verdict {
  const lock = found.lock;
  if (!lock) return { name: 'lock', ok: true, detail: 'unlocked' };
  const who = lock.owner
    ? `${lock.owner.user}@${lock.owner.machine} ` +
      `(${lock.owner.task}, pid ${lock.owner.pid}, since ${lock.owner.startedAt})`
    : 'an owner it cannot read';
  if (lock.ageSeconds > STALE_SECONDS)
    return {
      name: 'lock',
      ok: true,
      detail: `stale lock of ${who}, no heartbeat for ${lock.ageSeconds}s: the next deploy takes it over`,
    };
  return {
    name: 'lock',
    ok: false,
    detail: `held by ${who}: a deploy now would stop at once`,
    fix:
      'wait for that run to end; if it died, `unlock` removes the lock ' +
      `(or a deploy takes it over after ${STALE_SECONDS}s without heartbeat)`,
  };
}

function runtimeVerdict(config: Pick<ResolvedConfig, 'dependencies' | 'artifacts'>, found: CheckedHost): Verdict {
  const name = 'runtime';
  const type = config.dependencies.type;
  if (type === 'none') return { name, ok: 'skipped', detail: 'dependencies: none (nothing installed)' };
  if (type === 'node') {
    const node = found.state.runtime.node;
    if (node && found.npm) return { name, ok: true, detail: `node ${node}, npm ${found.npm}` };
    // A prebuilt artifact brings its node_modules: the host runs node, installs nothing, needs no npm.
    if (node && config.artifacts?.dependencies === 'prebuilt')
      return {
        name,
        ok: true,
        detail: `node ${node}; no npm, none needed: artifacts.dependencies is 'prebuilt' (a host of another node or platform than the build's would need it)`,
      };
    return {
      name,
      ok: false,
      detail: `dependencies: node, but ${node ? 'npm' : found.npm ? 'node' : 'node and npm'} not found`,
      fix: "install them on the host (apt-get install nodejs npm), on the deploy user's PATH over SSH",
    };
  }
  const python = found.state.runtime.python;
  if (/^Python 3/.test(python) && found.venv) return { name, ok: true, detail: `${python} with venv` };
  return {
    name,
    ok: false,
    detail: `dependencies: python, but ${/^Python 3/.test(python) ? 'its venv (with ensurepip)' : 'python3'} not found`,
    fix: 'install them on the host (apt-get install python3 python3-venv)',
  };
}

/** The live release's .env link leads nowhere: shared/.env is gone from the host. */
function sharedEnvVerdict(root: string, dotenv: CheckedHost['dotenv']): Verdict | undefined {
  if (dotenv !== 'dangling') return undefined;
  return {
    name: 'shared/.env',
    ok: false,
    detail: `${root}/current/.env links to ${root}/shared/.env, which is missing: the app starts without its values`,
    fix: 'deploy again (it installs the environment’s .env file there)',
  };
}

/** Every verdict for one host, in the order a deploy needs them. */
export function checkVerdicts(input: {
  config: Pick<
    ResolvedConfig,
    'services' | 'application' | 'dependencies' | 'artifacts' | 'healthcheck' | 'port' | 'vars'
  > &
    Partial<Pick<ResolvedConfig, 'cutover'>>;
  address: string;
  root: string;
  releaseId: string;
  found: CheckedHost;
  env: EnvFiles;
}): Verdict[] {
  const { config, found, root } = input;
  // What `setup` prepares: hosts without services, or with the helper.
  const setup = !config.services || Boolean(config.services.helper);
  const [writable, ...services] = serviceVerdicts({
    services: config.services,
    application: config.application,
    root,
    writable: found.state.writable,
    releaseId: input.releaseId,
    output: found.output,
    strategy: config.cutover?.strategy,
  });
  return [
    {
      name: 'ssh',
      ok: true,
      detail: input.address === 'local' ? 'the local target' : `${input.address}, host key verified (known_hosts)`,
    },
    rootVerdict(root, found, writable, setup),
    lockVerdict(found),
    runtimeVerdict(config, found),
    ...services.map((v) =>
      v.ok === false && setup && v.fix?.startsWith("as root, README's")
        ? { ...v, fix: `${SETUP}, or by hand ${v.fix.replace(/^as root, /, '(as root): ')}` }
        : v,
    ),
    healthcheckVerdict(config),
    envVerdict(input.env, found.dotenv),
    sharedEnvVerdict(root, found.dotenv),
  ].filter((v): v is Verdict => v !== undefined);
}

/** What to do about a host `check` could not connect to, from the connection's error. */
export function sshFix(message: string, user: string | undefined): string {
  if (/HOST KEY CHANGED|@revoked/.test(message))
    return 'if the host was really reinstalled, remove its old key as the message says; otherwise do not connect';
  if (/unknown host key/.test(message))
    return (
      "compare the fingerprint with the host's own (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), " +
      'then run with --trust-new-hosts'
    );
  if (/authentication methods failed|permission denied/i.test(message))
    return `${user ?? 'the deploy user'} or its key is not set up there: ${SETUP}, or check privateKey`;
  return 'is sshd running, and are host and port right? (ssh -p PORT user@host)';
}
