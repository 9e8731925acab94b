// --dry-run: a Host that runs only read-only commands and prints every other one instead of running it.
import type { Log } from '../lib/log.js';
import type { Shell } from '../lib/sh.js';
import type { LockOwner } from '../lock/owner.js';
import type { ExecOptions, ExecResult, HeldLock, Host } from './host.js';

export class DryRunHost implements Host {
  constructor(
    private readonly inner: Host,
    private readonly log: Log,
  ) {}
  get name() {
    return this.inner.name;
  }
  get roles() {
    return this.inner.roles;
  }
  get deployTo() {
    return this.inner.deployTo;
  }
  get address() {
    return this.inner.address;
  }
  get lockLost() {
    return this.inner.lockLost;
  }

  async exec(command: Shell, options: ExecOptions = {}): Promise<ExecResult> {
    if (options.readonly) return this.inner.exec(command, options);
    this.log.detail(
      this.name,
      `would run:\n${command.text}${options.stdinNote ? `\nwith on stdin: ${options.stdinNote}` : ''}`,
    );
    return { code: 0, stdout: '', stderr: '' };
  }

  async lock(owner: LockOwner, then?: Shell): Promise<HeldLock> {
    this.log.detail(this.name, `would take the deploy lock in ${this.deployTo}`);
    const output = then ? (await this.inner.exec(then, { readonly: true })).stdout : '';
    return { owner, output, release: async (finalCommand) => (finalCommand ? this.exec(finalCommand) : undefined) };
  }

  readLockOwner() {
    return this.inner.readLockOwner();
  }

  async breakLock(): Promise<LockOwner | null> {
    this.log.detail(this.name, 'would remove the deploy lock');
    return this.inner.readLockOwner();
  }

  interrupt() {
    return this.inner.interrupt();
  }

  close() {
    return this.inner.close();
  }
}
