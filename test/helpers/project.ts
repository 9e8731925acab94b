// A throwaway project for end-to-end tests: a real git repository holding the sample app under app/,
// a deploy config whose `local` environment deploys into <tmp>/deploy, a copy of templates/, and the
// real CLI (tsx + fabfile.ts) run against it as a subprocess, never through a shell.
//
//   const p = makeProject({ keepReleases: 5 });        // deploy.config.ts; format: 'json' | 'mjs' too
//   makeProject({ format: 'json', config: { knownHosts }, hosts: [...] })  // config keys; hosts replace `local`
//   const r = await p.run(['deploy']);                 // { code, signal, stdout, stderr }
//   p.commit('bump', { 'app/server.js': '...' });      // paths relative to the project; returns the sha
//   p.releases(), p.live(), p.revisions(), p.cleanup()
//
// Suites that rewrite the config file in place (bad-input) ask for format: 'json'.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/tsx/dist/cli.mjs');
const FABFILE = path.join(ROOT, 'fabfile.ts');
const DEFINE_CONFIG = path.join(ROOT, 'tasks/config/define-config.ts');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Sends `signal` once stdout or stderr matches `output` (SIGKILL goes to the whole process tree). */
  signalAfter?: { output: RegExp; signal: NodeJS.Signals };
  /** A fabfile of the test's own instead of the repository's. */
  fabfile?: string;
}

/**
 * Starts the real CLI. It leads its own process group: tsx runs fabfile.ts in a child process, so a
 * SIGKILL of tsx alone would leave the deploy running; `signalCli` kills the whole group.
 */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}, fabfile = FABFILE): ChildProcess {
  return spawn(process.execPath, [TSX, fabfile, ...args], {
    env: { ...process.env, CI: 'true', NO_COLOR: '1', npm_config_loglevel: 'error', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
}

/**
 * SIGKILL: the CLI and everything it started, as when the machine kills the run. Other signals: the CLI, which
 * relays them.
 */
export function signalCli(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(signal === 'SIGKILL' ? -child.pid! : child.pid!, signal);
  } catch {
    // already gone
  }
}

/** Runs the real CLI to the end and collects its output. */
export function runCli(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = startCli(args, options.env, options.fabfile);
    let stdout = '';
    let stderr = '';
    let signalled = false;
    const onData = () => {
      if (options.signalAfter && !signalled && options.signalAfter.output.test(stdout + stderr)) {
        signalled = true;
        signalCli(child, options.signalAfter.signal);
      }
    };
    child.stdout!.on('data', (d) => {
      stdout += d;
      onData();
    });
    child.stderr!.on('data', (d) => {
      stderr += d;
      onData();
    });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Resolves with everything printed so far once `pattern` appears on stdout or stderr. */
export function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; output:\n${seen}`)), timeoutMs);
    const onData = (d: Buffer) => {
      seen += d.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolve(seen);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
  });
}

export const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.com', ...args], {
    cwd,
    encoding: 'utf8',
  }).trim();

export interface ProjectOptions {
  /** deploy.config.ts (default, importing defineConfig), deploy.config.json or deploy.config.mjs. */
  format?: 'ts' | 'json' | 'mjs';
  keepReleases?: number;
  /** More top-level config keys, over the defaults. */
  config?: Record<string, unknown>;
  /** Replaces the one local host. */
  hosts?: unknown[];
}

export interface Project {
  dir: string;
  deployTo: string;
  configFile: string;
  /** Runs the CLI with `--config <configFile>` first. */
  run(args: string[], options?: RunOptions): Promise<RunResult>;
  start(args: string[], env?: NodeJS.ProcessEnv): ChildProcess;
  /**
   * commit(message, { 'app/x.js': text }) — or the older commit({ 'x.js': text } under app/, message).
   * Returns the sha.
   */
  commit(message: string, changes: Record<string, string>): string;
  commit(files: Record<string, string>, message?: string): string;
  /** Rewrites the config: the defaults (and this project's options) with `extra` over them. */
  writeConfig(extra?: Record<string, unknown>): void;
  releases(): string[];
  live(): string | null;
  revisions(): string[];
  /** Every path under deployTo (symlinks with their targets), sorted: compare two to see that nothing changed. */
  snapshot(): string[];
  cleanup(): void;
}

export function makeProject(options: ProjectOptions = {}): Project {
  const format = options.format ?? 'ts';

  const dir = mkdtempSync(path.join(tmpdir(), 'slipway-project-'));
  const deployTo = path.join(dir, 'deploy');
  mkdirSync(path.join(dir, 'app'));
  for (const file of ['server.js', 'package.json', 'package-lock.json'])
    cpSync(path.join(ROOT, 'examples/hello', file), path.join(dir, 'app', file));
  cpSync(path.join(ROOT, 'templates'), path.join(dir, 'templates'), { recursive: true });
  writeFileSync(path.join(dir, '.gitignore'), '.env\n.env.*\n');
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'config', 'user.name', 'test');
  git(dir, 'config', 'user.email', 'test@example.com');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-qm', 'first');

  const configFile = path.join(dir, `deploy.config.${format}`);
  const defaults = {
    application: 'hello',
    subdirectory: 'app',
    dependencies: { type: 'node' },
    shared: { dirs: ['logs'], files: [] },
    ...(options.keepReleases !== undefined ? { keepReleases: options.keepReleases } : {}),
  };
  const writeConfig = (extra: Record<string, unknown> = {}) => {
    const config = {
      ...defaults,
      environments: { local: { hosts: options.hosts ?? [{ name: 'local', local: true, deployTo }] } },
      ...options.config,
      ...extra,
    };
    const json = JSON.stringify(config, null, 2);
    const text =
      format === 'json'
        ? json
        : format === 'mjs'
          ? `export default ${json};\n`
          : `import { defineConfig } from ${JSON.stringify(DEFINE_CONFIG)};\n\nexport default defineConfig(${json});\n`;
    writeFileSync(configFile, text);
  };
  const readOr = <T>(read: () => T, fallback: T): T => {
    try {
      return read();
    } catch {
      return fallback;
    }
  };

  const project: Project = {
    dir,
    deployTo,
    configFile,
    run: (args, options) => runCli(['--config', configFile, ...args], options),
    start: (args, env) => startCli(['--config', configFile, ...args], env),
    commit(a: string | Record<string, string>, b?: string | Record<string, string>) {
      // commit(message, changes relative to the project) or commit(changes relative to app/, message).
      const [message, changes, base] =
        typeof a === 'string'
          ? [a, b as Record<string, string>, dir]
          : [(b as string) ?? 'change', a, path.join(dir, 'app')];
      const files = Object.entries(changes).map(([name, content]) => {
        const file = path.join(base, name);
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, content);
        return file;
      });
      git(dir, 'add', '--', ...files);
      git(dir, 'commit', '-qm', message);
      return git(dir, 'rev-parse', 'HEAD');
    },
    writeConfig,
    releases: () => readOr(() => readdirSync(path.join(deployTo, 'releases')).sort(), []),
    live: () => readOr(() => readlinkSync(path.join(deployTo, 'current')).replace(/^releases\//, ''), null),
    revisions: () =>
      readOr(() => readFileSync(path.join(deployTo, 'revisions.log'), 'utf8').split('\n').filter(Boolean), []),
    snapshot: () => (existsSync(deployTo) ? listTree(deployTo) : []),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
  writeConfig();
  return project;
}

function listTree(root: string, rel = ''): string[] {
  return readdirSync(path.join(root, rel), { withFileTypes: true })
    .flatMap((entry) => {
      const name = path.join(rel, entry.name);
      if (entry.isSymbolicLink()) return [`${name} -> ${readlinkSync(path.join(root, name))}`];
      return entry.isDirectory() ? [`${name}/`, ...listTree(root, name)] : [name];
    })
    .sort();
}

/** The release id a deploy printed (its `release id:` line). */
export function releaseIdOf(output: string): string {
  const match = /release id: (\S+)/.exec(output);
  if (!match) throw new Error(`no release id in output:\n${output}`);
  return match[1];
}

/**
 * Starts `count` deploys at the same moment and returns their results. Each would pause right after
 * taking the lock, and the winner is let go only once every other run has ended: on a slow machine a
 * quick winner could otherwise finish and free the lock before a late starter reached it, which would
 * then rightly succeed too, and the race would test nothing.
 */
export async function raceDeploys(project: Project, count: number, args: string[] = []): Promise<RunResult[]> {
  const resume = path.join(mkdtempSync(path.join(tmpdir(), 'slipway-race-')), 'go');
  const env = { SLIPWAY_FAULT: 'pause:after:lock', SLIPWAY_FAULT_RESUME: resume };
  let ended = 0;
  const runs = Array.from({ length: count }, () =>
    project.run(['deploy', ...args], { env }).then((result) => {
      if (++ended === count - 1) writeFileSync(resume, '');
      return result;
    }),
  );
  try {
    return await Promise.all(runs);
  } finally {
    rmSync(path.dirname(resume), { recursive: true, force: true });
  }
}
