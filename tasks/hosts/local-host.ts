// The local target: commands run under bash via zx; the deploy lock is proper-lockfile's. While it is
// held, each command first checks that the lock is still this run's (same lock dir, our token in its
// owner file), and a lock proper-lockfile finds compromised stops the run's commands at once.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { ConfigError } from '../lib/errors.js';
import { layout } from '../lib/paths.js';
import { type Shell, script, sh } from '../lib/sh.js';
import { LockHeld, LockLost, type LockOwner, ownerDeadHere, parseOwner } from '../lock/owner.js';
import { claimRootScript, notDeployRootMessage } from '../lock/remote-lock.js';
import { CommandFailed, type ExecOptions, type ExecResult, type HeldLock, type Host } from './host.js';

/** proper-lockfile refreshes the lock's mtime every UPDATE ms; a lock untouched for STALE ms is a dead run's. */
const STALE_MS = 20_000;

const UPDATE_MS = 5_000;

type StoredOwner = LockOwner & { lockInode?: number };

/**
 * The command in its own process group (see exec) dies with this process: a signal to our group does not
 * reach it, so a deployer killed with SIGKILL would leave it running on, unlocked. A watchdog beside it
 * kills the group once this process is gone.
 */
function diesWithThisProcess(command: Shell): Shell {
  return script(
    // Alive, and not a zombie (a killed process stays one until reaped, and kill -0 still succeeds on it).
    // Without /proc (not Linux), kill -0 is all there is.
    sh`deployer_alive() {`,
    sh`  if [ ! -d /proc/self ]; then kill -0 ${process.pid} 2>/dev/null; return; fi`,
    sh`  read -r stat < /proc/${process.pid}/stat 2>/dev/null || return 1`,
    sh`  stat=\${stat##*) }`,
    sh`  [ "\${stat%% *}" != Z ]`,
    sh`}`,
    sh`( while deployer_alive; do sleep 0.2; done; kill -KILL 0 ) </dev/null >/dev/null 2>&1 &`,
    sh`watchdog=$!`,
    sh`bash -c ${command.text}`,
    sh`status=$?`,
    sh`kill "$watchdog" 2>/dev/null`,
    sh`exit "$status"`,
  );
}

export class LocalHost implements Host {
  readonly address = 'local';
  lockLost = false;
  /** The lock this run holds: its token and the inode of its lock dir (a lock taken over is a new dir). */
  private held?: { token: string; inode: number };
  private readonly lockDir: string;
  private readonly ownerFile: string;

  constructor(
    readonly name: string,
    readonly deployTo: string,
    readonly roles: readonly string[] = [],
  ) {
    const p = layout(deployTo);
    this.lockDir = p.lock;
    this.ownerFile = p.lockOwner;
  }

  /** The process groups of commands still running. */
  private readonly running = new Set<{ readonly pid: number | undefined }>();

  async exec(command: Shell, options: ExecOptions = {}): Promise<ExecResult> {
    if (this.held && !this.lockLost && !this.stillOurs(this.held)) this.onLockLost();
    if (this.lockLost) throw new LockLost(this.name);
    if (options.stdout) return this.streamed(command, options);
    const { $ } = await import('zx');
    // Its own process group, as a remote command is: a Ctrl-C reaches the deploy, which stops it (interrupt).
    const child = $({
      input: options.stdin as never,
      nothrow: true,
      quiet: true,
      detached: true,
    })`bash -c ${diesWithThisProcess(command).text}`;
    this.running.add(child);
    try {
      const output = await child;
      // The lock was found compromised while this ran (and it was stopped for that).
      if (this.lockLost) throw new LockLost(this.name);
      return { code: output.exitCode, stdout: output.stdout, stderr: output.stderr };
    } finally {
      this.running.delete(child);
    }
  }

  /** exec with stdout streamed to options.stdout (zx would also keep all of it in memory). */
  private async streamed(command: Shell, options: ExecOptions): Promise<ExecResult> {
    const stdout = options.stdout!;
    const child = spawn('bash', ['-c', diesWithThisProcess(command).text], {
      detached: true,
      stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const running = { pid: child.pid };
    this.running.add(running);
    const stdin = options.stdin;
    if (child.stdin && stdin !== undefined) {
      child.stdin.on('error', () => undefined);
      if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) child.stdin.end(stdin);
      else (stdin as Readable).pipe(child.stdin);
    }
    child.stdout!.pipe(stdout);
    const err: Buffer[] = [];
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    try {
      const code = await new Promise<number | null>((resolve) => {
        child.on('error', () => resolve(null));
        child.on('close', (status) => resolve(status));
      });
      if (this.lockLost) throw new LockLost(this.name);
      return { code, stdout: '', stderr: Buffer.concat(err).toString('utf8') };
    } finally {
      this.running.delete(running);
    }
  }

  async interrupt(): Promise<void> {
    for (const { pid } of this.running) {
      try {
        if (pid) process.kill(-pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  }

  private stillOurs(held: { token: string; inode: number }): boolean {
    return (
      statSync(this.lockDir, { throwIfNoEntry: false })?.ino === held.inode && this.storedOwner()?.token === held.token
    );
  }

  private onLockLost(): void {
    this.lockLost = true;
    void this.interrupt();
  }

  private storedOwner(): StoredOwner | null {
    return existsSync(this.ownerFile) ? parseOwner(readFileSync(this.ownerFile, 'utf8')) : null;
  }

  /**
   * Who holds the lock we just failed to take. The holder writes its owner file just after taking
   * the lock, so a run that lost the race by a hair waits a moment for the file of this lock.
   */
  private async holder(): Promise<StoredOwner | null> {
    for (let waited = 0; waited < 1000; waited += 25) {
      const inode = statSync(this.lockDir, { throwIfNoEntry: false })?.ino;
      const stored = this.storedOwner();
      if (inode === undefined || stored?.lockInode === inode) return stored;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return this.storedOwner();
  }

  async lock(owner: LockOwner, then?: Shell): Promise<HeldLock> {
    const lockfile = (await import('proper-lockfile')).default;
    const claim = await this.exec(claimRootScript(this.deployTo));
    if (claim.code !== 0) throw new CommandFailed(this.name, 'deploy lock', claim);
    if (/^@@not-deploy-root$/m.test(claim.stdout))
      throw new ConfigError(notDeployRootMessage(this.name, this.deployTo));
    mkdirSync(this.deployTo, { recursive: true });
    const previous = this.storedOwner();
    const existed = existsSync(this.lockDir);
    // A run of ours on this machine whose process is gone cannot be holding the lock: let
    // proper-lockfile treat it as stale now rather than after STALE_MS. The inode check makes sure
    // the lock is still the one that dead run made, not a fresh one taken since we read the owner.
    if (existed && previous && ownerDeadHere(previous)) {
      const inode = statSync(this.lockDir, { throwIfNoEntry: false })?.ino;
      if (inode !== undefined && inode === previous.lockInode) utimesSync(this.lockDir, 0, 0);
    }
    let releaseLock: () => Promise<void>;
    try {
      releaseLock = await lockfile.lock(this.deployTo, {
        lockfilePath: this.lockDir,
        realpath: false,
        stale: STALE_MS,
        update: UPDATE_MS,
        retries: 0,
        // Another run took the lock (this one stalled past STALE_MS) or it was removed: stop here.
        onCompromised: () => this.onLockLost(),
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ELOCKED') throw new LockHeld(this.name, await this.holder());
      throw error;
    }
    const stored: StoredOwner = { ...owner, lockInode: statSync(this.lockDir).ino };
    // Renamed into place, so a reader never sees it half-written.
    const next = `${this.ownerFile}.${process.pid}`;
    writeFileSync(next, `${JSON.stringify(stored)}\n`, { mode: 0o644 });
    renameSync(next, this.ownerFile);
    this.held = { token: owner.token, inode: stored.lockInode! };
    const release = async (finalCommand?: Shell) => {
      try {
        // exec runs the final command only while the lock is ours (LockLost otherwise).
        return finalCommand ? await this.exec(finalCommand) : undefined;
      } finally {
        // A lost lock is another run's now: proper-lockfile's release would remove it.
        if (!this.lockLost) {
          this.held = undefined;
          if (this.storedOwner()?.token === owner.token) rmSync(this.ownerFile, { force: true });
          await releaseLock().catch(() => undefined);
        }
      }
    };
    const output = then ? await this.exec(then) : undefined;
    if (output && output.code !== 0) {
      await release();
      throw new CommandFailed(this.name, 'reading the deploy root', output);
    }
    return { owner, recovered: existed ? (previous ?? undefined) : undefined, output: output?.stdout ?? '', release };
  }

  async readLockOwner(): Promise<LockOwner | null> {
    return existsSync(this.lockDir) ? (this.storedOwner() ?? null) : null;
  }

  async breakLock(): Promise<LockOwner | null> {
    if (
      existsSync(this.deployTo) &&
      (await this.exec(claimRootScript(this.deployTo))).stdout.includes('@@not-deploy-root')
    ) {
      throw new ConfigError(notDeployRootMessage(this.name, this.deployTo));
    }
    const owner = await this.readLockOwner();
    rmSync(this.ownerFile, { force: true });
    rmSync(this.lockDir, { recursive: true, force: true });
    return owner;
  }

  async close(): Promise<void> {}
}
