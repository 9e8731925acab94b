// The command line, parsed into options and `task:arg,arg` invocations. Pure: no I/O.
import { parseArgs } from 'node:util';
import { parseWaves, type WaveSize } from '../config/rollout.js';
import { UsageError } from '../lib/errors.js';

/** The command line's options. */
export interface CliOptions {
  env?: string;
  config?: string;
  ref?: string;
  hosts?: string[];
  roles?: string[];
  rolling?: number;
  dryRun: boolean;
  json: boolean;
  list: boolean;
  help: boolean;
  force: boolean;
  keepFailed: boolean;
  trustNewHosts: boolean;
  autoRollback: boolean;
  /** `--follow`: stream until Ctrl-C (logs). */
  follow: boolean;
  /** The words after `--` (ssh): a command to run instead of a shell. */
  command?: string[];
  /** `--waves 1,10%,100%`: go live in these waves (cumulative), overriding rollout.waves. */
  waves?: WaveSize[];
  /** `--verbose`: on a terminal too, a line per host per step. */
  verbose: boolean;
  /** Proceed without asking (pull into a protected environment). */
  yes: boolean;
  artifact?: string;
}

export interface TaskCall {
  name: string;
  args: string[];
}

const TASK_NAME = /^[a-z][a-z0-9-]*$/;

/** `rollback:2024.01.01-00.00.00-abc1234` → { name: 'rollback', args: [...] } (Fabric's syntax). */
export function parseTaskCall(word: string): TaskCall {
  const colon = word.indexOf(':');
  const name = colon === -1 ? word : word.slice(0, colon);
  if (!TASK_NAME.test(name)) {
    throw new UsageError(
      `bad task name "${name}": expected lower-case letters, digits and dashes, as in "deploy" or "rollback:current"`,
    );
  }
  if (colon === -1) return { name, args: [] };
  const args = word.slice(colon + 1).split(',');
  if (args.some((a) => a === '')) {
    throw new UsageError(`task "${name}": empty argument in "${word}"; expected ${name}:ARG[,ARG...]`);
  }
  return { name, args };
}

function list(value: string | undefined, option: string): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) throw new UsageError(`--${option}: empty name in "${value}"; expected a,b,c`);
  return items;
}

/** node's parseArgs with slipway's options; its errors become usage errors. */
function parseOptions(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      tokens: true,
      options: {
        env: { type: 'string' },
        config: { type: 'string' },
        ref: { type: 'string' },
        hosts: { type: 'string' },
        roles: { type: 'string' },
        rolling: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        list: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        force: { type: 'boolean', default: false },
        'keep-failed': { type: 'boolean', default: false },
        'trust-new-hosts': { type: 'boolean', default: false },
        'no-auto-rollback': { type: 'boolean', default: false },
        follow: { type: 'boolean', default: false },
        waves: { type: 'string' },
        verbose: { type: 'boolean', short: 'v', default: false },
        yes: { type: 'boolean', default: false },
        artifact: { type: 'string' },
      },
    });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}; see --help`);
  }
}

export function parseCommandLine(argv: string[]): { options: CliOptions; calls: TaskCall[] } {
  const parsed = parseOptions(argv);
  const v = parsed.values;
  for (const key of ['env', 'config', 'ref', 'artifact'] as const) {
    if (v[key] !== undefined && v[key]!.trim() === '') throw new UsageError(`--${key} needs a value`);
  }
  let rolling: number | undefined;
  if (v.rolling !== undefined) {
    rolling = /^\d+$/.test(v.rolling) ? Number(v.rolling) : NaN;
    if (!Number.isInteger(rolling) || rolling < 1)
      throw new UsageError(`--rolling: expected a whole number ≥ 1, got "${v.rolling}"`);
  }
  if (rolling !== undefined && v.waves !== undefined)
    throw new UsageError('--rolling and --waves: give one (--rolling N prepares and switches N hosts at a time)');
  // The words after `--` are a command (ssh:<host> -- ls -la), not task calls; each word stays one argument.
  const terminator = parsed.tokens.find((t) => t.kind === 'option-terminator');
  const commandWords = terminator
    ? parsed.tokens.filter((t) => t.kind === 'positional' && t.index > terminator.index).length
    : 0;
  if (terminator && commandWords === 0)
    throw new UsageError('`--` needs a command after it, as in: ssh:web1 -- ls -la');
  const taskWords = parsed.positionals.slice(0, parsed.positionals.length - commandWords);
  return {
    options: {
      env: v.env,
      config: v.config,
      ref: v.ref,
      hosts: list(v.hosts, 'hosts'),
      roles: list(v.roles, 'roles'),
      rolling,
      dryRun: v['dry-run']!,
      json: v.json!,
      list: v.list!,
      help: v.help!,
      force: v.force!,
      keepFailed: v['keep-failed']!,
      trustNewHosts: v['trust-new-hosts']!,
      autoRollback: !v['no-auto-rollback'],
      follow: v.follow!,
      ...(v.waves !== undefined ? { waves: parseWaves(v.waves) } : {}),
      verbose: v.verbose!,
      ...(terminator ? { command: parsed.positionals.slice(taskWords.length) } : {}),
      yes: v.yes!,
      artifact: v.artifact,
    },
    calls: taskWords.map(parseTaskCall),
  };
}

export const USAGE = `usage: npx tsx fabfile.ts [options] TASK[:ARG[,ARG...]] [TASK...] [-- COMMAND...]

options:
  --env NAME           environment to act on (default: config defaultEnvironment, else "local")
  --config FILE        config file (.ts, .mjs or .json; default deploy.config.ts beside fabfile.ts)
  --ref REF            git ref to deploy (overrides the config's ref)
  --hosts a,b          only these hosts of the environment
  --roles r1,r2        only hosts with one of these roles
  --rolling N          deploy in batches of N hosts
  --dry-run            print every step and command, change nothing
  --keep-failed        keep a failed release's work for inspection (outside releases/)
  --force              allow rollback to a release marked bad
  --trust-new-hosts    accept and record host keys not yet known (never a changed key)
  --no-auto-rollback   leave a release that failed its health check live
  --artifact ID        deploy this artifact from the store (an id, or "latest") instead of building one
  --json               print one JSON result on stdout (human output goes to stderr)
  --yes                pull into a protected environment without asking
  --list               list the tasks
  -h, --help           this help
  --follow             logs: keep streaming new lines until Ctrl-C
  --waves 1,10%,100%   deploy: go live in waves, each gated by its health check (see rollout in README)
  -v, --verbose        on a terminal too, one line per host per step
  -- COMMAND...        ssh: run COMMAND (each word one argument) in the live release instead of a shell`;
