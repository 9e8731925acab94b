// A throwaway project for end-to-end tests: a real git repository holding the sample app, a deploy
// config pointing at a temp deploy root, and the real CLI run as a subprocess against it.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/tsx/dist/cli.mjs');
const FABFILE = path.join(ROOT, 'fabfile.ts');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI; no shell involved. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = startCli(args, env);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [TSX, FABFILE, ...args], {
    env: { ...process.env, CI: 'true', NO_COLOR: '1', npm_config_loglevel: 'error', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
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
  execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.com', ...args], { cwd, encoding: 'utf8' }).trim();

export interface Project {
  dir: string;
  deployTo: string;
  configFile: string;
  /** Runs the CLI with this project's config. */
  run(args: string[], env?: NodeJS.ProcessEnv): Promise<RunResult>;
  start(args: string[], env?: NodeJS.ProcessEnv): ChildProcess;
  /** Commits these files (path → content) under app/; returns the commit sha. */
  commit(files: Record<string, string>, message?: string): string;
  releases(): string[];
  live(): string | null;
  revisions(): string[];
  writeConfig(config: Record<string, unknown>): void;
  cleanup(): void;
}

/** `config` entries are merged over the defaults; `hosts` replaces the local host. */
export function makeProject(config: Record<string, unknown> = {}, hosts?: unknown[]): Project {
  const dir = mkdtempSync(path.join(tmpdir(), 'slipway-project-'));
  const deployTo = path.join(dir, 'deploy');
  const app = path.join(dir, 'app');
  mkdirSync(app);
  for (const file of ['server.js', 'package.json', 'package-lock.json']) cpSync(path.join(ROOT, 'examples/hello', file), path.join(app, file));
  cpSync(path.join(ROOT, 'templates'), path.join(dir, 'templates'), { recursive: true });
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-qm', 'first');
  const configFile = path.join(dir, 'deploy.config.json');
  const project: Project = {
    dir,
    deployTo,
    configFile,
    run: (args, env) => runCli(['--config', configFile, ...args], env),
    start: (args, env) => startCli(['--config', configFile, ...args], env),
    commit(files, message = 'change') {
      for (const [name, content] of Object.entries(files)) {
        mkdirSync(path.dirname(path.join(app, name)), { recursive: true });
        writeFileSync(path.join(app, name), content);
      }
      git(dir, 'add', '-A');
      git(dir, 'commit', '-qm', message);
      return git(dir, 'rev-parse', 'HEAD');
    },
    releases: () => {
      try {
        return readdirSync(path.join(deployTo, 'releases')).sort();
      } catch {
        return [];
      }
    },
    live: () => {
      try {
        return readlinkSync(path.join(deployTo, 'current')).replace(/^releases\//, '');
      } catch {
        return null;
      }
    },
    revisions: () => {
      try {
        return readFileSync(path.join(deployTo, 'revisions.log'), 'utf8').split('\n').filter(Boolean);
      } catch {
        return [];
      }
    },
    writeConfig(extra) {
      const base = {
        application: 'hello',
        subdirectory: 'app',
        dependencies: { type: 'node' },
        shared: { dirs: ['logs'], files: [] },
        environments: { local: { hosts: hosts ?? [{ name: 'local', local: true, deployTo }] } },
      };
      writeFileSync(configFile, JSON.stringify({ ...base, ...extra }, null, 2));
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
  project.writeConfig(config);
  return project;
}

/** The release ids in a CLI's output (the `release id:` line). */
export function releaseIdOf(output: string): string {
  const match = /release id: (\S+)/.exec(output);
  if (!match) throw new Error(`no release id in output:\n${output}`);
  return match[1];
}
