// A remote host over one SSH connection (node-ssh / ssh2) for the whole run. Host keys are verified
// against known_hosts; ~/.ssh/config is honoured; every command runs as `bash -c <quoted script>`
// on its own channel, and a missing exit status counts as failure.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { homedir, userInfo } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { ConnectConfig } from 'ssh2';
import type { HostConfig, ResolvedConfig } from '../config/types.js';
import { ConfigError } from '../lib/errors.js';
import { quote, script, sh, type Shell } from '../lib/sh.js';
import { LockHeld, LockLost, type LockOwner, ownerDeadHere, parseOwner, printedOwner } from '../lock/owner.js';
import {
  acquireScript,
  breakScript,
  HEARTBEAT_MS,
  LOCK_LOST_STATUS,
  lockGuardScript,
  notDeployRootMessage,
  readOwnerScript,
  releaseScript,
} from '../lock/remote-lock.js';
import {
  type Channel,
  type ConnectionSettings,
  type KeptHost,
  serveBroker,
  type Transport,
  useBroker,
} from './broker.js';
import { codeRecordFile, readCodeRecord, writeCodeRecord } from './code-record.js';
import { CODE_MISSING, CODE_MISSING_STATUS, hostCall, hostCode, listedCode, sameCode } from './host-code.js';
import { CommandFailed, type ExecOptions, type ExecResult, type HeldLock, type Host } from './host.js';
import { findKnownKeys, hostKeyAlgorithms, knownHostsName, verifyHostKey } from './known-hosts.js';

type Client = import('node-ssh').NodeSSH;

export interface Endpoint {
  host: string;
  port: number;
  username: string;
  privateKey?: string;
  passphrase?: string;
  proxyJump?: string;
}

const expandHome = (p: string) => (p.startsWith('~/') ? path.join(homedir(), p.slice(2)) : p);

async function sshConfigFor(alias: string): Promise<Record<string, string | string[]>> {
  const file = path.join(homedir(), '.ssh', 'config');
  if (!existsSync(file)) return {};
  const { default: SSHConfig } = await import('ssh-config');
  return SSHConfig.parse(readFileSync(file, 'utf8')).compute(alias);
}

const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/** Where and as whom to connect: the host entry first, then ~/.ssh/config, then OpenSSH's defaults. */
export async function resolveEndpoint(
  h: Pick<HostConfig, 'name' | 'host' | 'port' | 'user' | 'privateKey' | 'passphraseEnv'>,
): Promise<Endpoint> {
  const alias = h.host!;
  const fromConfig = await sshConfigFor(alias);
  const keyFile = h.privateKey ?? first(fromConfig.IdentityFile);
  let privateKey: string | undefined;
  if (keyFile) {
    const file = expandHome(keyFile);
    try {
      privateKey = readFileSync(file, 'utf8');
    } catch (error) {
      if (h.privateKey || existsSync(file)) {
        throw new ConfigError(
          `${h.name}: cannot read privateKey ${file}: ` +
            `${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        );
      }
    }
  }
  const passphrase = h.passphraseEnv ? process.env[h.passphraseEnv] : undefined;
  if (h.passphraseEnv && passphrase === undefined)
    throw new ConfigError(`${h.name}: passphraseEnv names ${h.passphraseEnv}, which is not set`);
  const proxyJump = first(fromConfig.ProxyJump);
  return {
    host: first(fromConfig.HostName) ?? alias,
    port: h.port ?? (Number(first(fromConfig.Port)) || 22),
    username: h.user ?? first(fromConfig.User) ?? userInfo().username,
    privateKey,
    passphrase,
    proxyJump: proxyJump && proxyJump !== 'none' ? proxyJump : undefined,
  };
}

/** A host key that known_hosts accepted for a connection: kept connections check it again on each use. */
interface AcceptedHostKey {
  file: string;
  name: string;
  blob: Buffer;
}

/** Opens a verified connection; the host keys accepted on the way (jump hosts' too) are added to `accepted`. */
export async function openConnection(
  name: string,
  endpoint: Endpoint,
  config: ConnectionSettings,
  trustNewHosts: boolean,
  accepted: AcceptedHostKey[] = [],
  jumps = 0,
): Promise<Client> {
  const { NodeSSH } = await import('node-ssh');
  const knownHosts = expandHome(config.knownHosts ?? path.join(homedir(), '.ssh', 'known_hosts'));
  const knownName = knownHostsName(endpoint.host, endpoint.port);
  const known = existsSync(knownHosts) ? findKnownKeys(readFileSync(knownHosts, 'utf8'), knownName).keys : [];
  let rejection: string | undefined;
  let sock: ConnectConfig['sock'];
  let jumpClient: Client | undefined;
  if (endpoint.proxyJump) {
    if (jumps > 3) throw new Error(`${name}: ProxyJump chain too long`);
    const [userPart, hostPart] = endpoint.proxyJump.includes('@')
      ? endpoint.proxyJump.split('@')
      : [undefined, endpoint.proxyJump];
    const [jumpHost, jumpPort] = hostPart.split(':');
    const jump = await resolveEndpoint({
      name,
      host: jumpHost,
      port: jumpPort ? Number(jumpPort) : undefined,
      user: userPart,
    });
    const through = await openConnection(`${name} (via ${jumpHost})`, jump, config, trustNewHosts, accepted, jumps + 1);
    jumpClient = through;
    sock = await new Promise<ConnectConfig['sock']>((resolve, reject) =>
      through.connection!.forwardOut('127.0.0.1', 0, endpoint.host, endpoint.port, (error, stream) =>
        error ? reject(error) : resolve(stream),
      ),
    ).catch((error: Error) => {
      through.dispose();
      throw new Error(
        `${name}: cannot reach ${endpoint.host}:${endpoint.port} through ${endpoint.proxyJump}: ${error.message}`,
      );
    });
  }
  // ssh2 opens its socket with Nagle's algorithm on: each small request then waits for the host's
  // delayed ACK (~40 ms per round trip on Linux). A socket of our own with TCP_NODELAY avoids that.
  sock ??= net.connect({ host: endpoint.host, port: endpoint.port, noDelay: true });
  const ssh = new NodeSSH();
  try {
    await ssh.connect({
      host: endpoint.host,
      port: endpoint.port,
      username: endpoint.username,
      privateKey: endpoint.privateKey,
      passphrase: endpoint.passphrase,
      agent: process.env.SSH_AUTH_SOCK,
      sock,
      readyTimeout: config.connectTimeoutSeconds * 1000,
      keepaliveInterval: 10_000,
      keepaliveCountMax: 3,
      ...(known.length ? { algorithms: { serverHostKey: hostKeyAlgorithms(known) as never } } : {}),
      hostVerifier: (key: Buffer) => {
        const verdict = verifyHostKey(knownHosts, knownName, key, trustNewHosts);
        if (!verdict.ok) rejection = verdict.reason;
        else accepted.push({ file: knownHosts, name: knownName, blob: key });
        return verdict.ok;
      },
    });
  } catch (error) {
    jumpClient?.dispose();
    const where = `${endpoint.username}@${endpoint.host}:${endpoint.port}`;
    const message = rejection ?? (error as Error).message;
    // A key that does not parse (or a wrong passphrase) is the config's fault, not the network's.
    if (message.startsWith('Cannot parse privateKey')) throw new ConfigError(`${name}: ${message}`);
    throw new Error(`${name}: cannot connect to ${where}: ${message}`);
  }
  // The jump host's connection lives as long as the one through it: a kept connection reconnected
  // by the broker would otherwise leave one behind each time.
  if (jumpClient) {
    // Through a forwarded channel ssh2 emits 'end' when the connection is gone, but not always 'close'.
    ssh.connection!.on('end', () => jumpClient.dispose());
    ssh.connection!.on('close', () => jumpClient.dispose());
  }
  return ssh;
}

/** SLIPWAY_TRACE_FILE (bench/bytes.ts): each command's size, one JSON line each, for a breakdown of the bytes. */
function traceCommand(host: string, line: string, command: Shell, options: ExecOptions): void {
  const stdin = options.stdin;
  const stdinBytes =
    typeof stdin === 'string' || Buffer.isBuffer(stdin) ? Buffer.byteLength(stdin) : stdin ? 'stream' : 0;
  const entry = {
    host,
    line: Buffer.byteLength(line),
    stdin: stdinBytes,
    text: command.text.slice(0, 200),
    full: line,
  };
  appendFileSync(process.env.SLIPWAY_TRACE_FILE!, `${JSON.stringify(entry)}\n`);
}

export class SshHost implements Host {
  readonly address: string;
  private lastTouch = 0;
  private heartbeat?: NodeJS.Timeout;
  private heldToken?: string;
  /** Open channels, with the remote process group each one runs (its shell's pid). */
  private readonly channels = new Map<Channel, number | undefined>();
  private lost?: Error;
  lockLost = false;
  /** From the lock on, commands call the code kept on the host; these hashes it is known to hold. */
  private usesCode = false;
  private codeListed = false;
  private readonly codeKnown = new Set<string>();
  /** What the host listed: each file's sha256 by the hash of the code it should hold. */
  private readonly codeHeld = new Map<string, string>();
  /** Attached by this run (and so installed, in a deploy root). */
  private readonly codeSent = new Set<string>();
  private codeRecord?: Set<string>;
  /** The host's key, when this run verified it itself (not through a kept connection): part of the record's name. */
  hostKey?: Buffer;
  /** With keepConnections, when the broker was only starting: at the end, it takes this host over for the next run. */
  handOver?: () => Promise<void>;

  constructor(
    readonly name: string,
    readonly deployTo: string,
    readonly roles: readonly string[],
    private readonly transport: Transport,
    endpoint: Endpoint,
  ) {
    this.address = `${endpoint.username}@${endpoint.host}:${endpoint.port}`;
  }

  /** A connection of this run's own: a drop is remembered, so later commands fail at once. */
  static direct(name: string, deployTo: string, roles: readonly string[], ssh: Client, endpoint: Endpoint): SshHost {
    const connection = ssh.connection!;
    const host = new SshHost(
      name,
      deployTo,
      roles,
      { exec: (command, callback) => connection.exec(command, callback), close: () => ssh.dispose() },
      endpoint,
    );
    // ssh2 emits 'error' on a dropped connection after connect; unhandled it would crash the process.
    connection.on('error', (error: Error) => (host.lost = error));
    connection.on('close', () => (host.lost ??= new Error('connection closed')));
    return host;
  }

  /**
   * While the lock is held, every command goes behind the lock guard (it stops with LockLost when
   * another run took the lock), which also refreshes the heartbeat, at most every few seconds: a
   * `touch` on each command would cost a process each.
   */
  async exec(command: Shell, options: ExecOptions = {}): Promise<ExecResult> {
    if (this.lockLost) throw new LockLost(this.name);
    const token = this.heldToken;
    const heartbeat = token !== undefined && Date.now() - this.lastTouch >= HEARTBEAT_MS / 3;
    if (heartbeat) this.lastTouch = Date.now();
    const result = await this.send(
      token ? script(lockGuardScript(this.deployTo, token, heartbeat), command) : command,
      options,
    );
    if (result.code === LOCK_LOST_STATUS && result.stderr.includes('@@lock-lost')) this.onLockLost();
    // Also when another command found the lock lost while this one ran (and it was stopped for that).
    if (this.lockLost) throw new LockLost(this.name);
    return result;
  }

  /** Nothing more of this run may change the host: stop the heartbeat and whatever still runs there. */
  private onLockLost(): void {
    this.lockLost = true;
    this.heldToken = undefined;
    clearInterval(this.heartbeat);
    void this.interrupt();
  }

  /**
   * Commands of a locked run (the lock's round trip, then every command) call slipway's code kept on the host
   * (host-code.ts): a short call, or the code attached where the host lacks it. A call that cannot be sent twice
   * (stdin or stdout a stream) goes with its code unless the host is known to hold it.
   */
  private async send(command: Shell, options: ExecOptions = {}): Promise<ExecResult> {
    const code = this.usesCode && !this.lost ? hostCode(command, this.deployTo) : undefined;
    if (!code) return this.sendLine(`exec bash -c ${quote(command.text)}`, command, options);
    const stdin = options.stdin;
    const once =
      options.stdout !== undefined || (stdin !== undefined && typeof stdin !== 'string' && !Buffer.isBuffer(stdin));
    // Once the host listed its code (the first call of the run), what it lacks goes attached, in one round trip;
    // the first call goes short where the last run left this code on the host (code-record.ts).
    const held = this.codeKnown.has(code.hash) || sameCode(code, this.codeHeld.get(code.hash));
    const recorded = !this.codeListed && this.recordedCode().has(code.hash);
    const attach = (once || this.codeListed || !recorded) && !held;
    const list = !this.codeListed;
    let result = this.takeCodeList(await this.sendLine(hostCall(code, this.deployTo, attach, list), command, options));
    if (result.code !== null) this.codeListed = true;
    let sent = attach;
    if (!attach && result.code === CODE_MISSING_STATUS && result.stderr.includes(CODE_MISSING)) {
      result = await this.sendLine(hostCall(code, this.deployTo, true), command, options);
      sent = true;
    } else if (!attach && result.code !== null) this.codeKnown.add(code.hash);
    // Attached, it is kept there once the deploy root is one: the next run's first call may go short.
    if (sent && result.code !== null) this.codeSent.add(code.hash);
    return result;
  }

  /** What the last run left on this host, read once. */
  private recordedCode(): Set<string> {
    this.codeRecord ??= readCodeRecord(codeRecordFile(this.address, this.deployTo, this.hostKey));
    return this.codeRecord;
  }

  /** Notes the code a host listed (with each file's sha256) and takes those lines out of stderr. */
  private takeCodeList(result: ExecResult): ExecResult {
    const { held, rest } = listedCode(result.stderr);
    for (const [hash, sha] of held) this.codeHeld.set(hash, sha);
    return held.size ? { ...result, stderr: rest } : result;
  }

  private sendLine(line: string, command: Shell, options: ExecOptions): Promise<ExecResult> {
    if (process.env.SLIPWAY_TRACE_FILE) traceCommand(this.name, line, command, options);
    if (this.lost) options.stdout?.end();
    if (this.lost)
      return Promise.resolve({
        code: null,
        stdout: '',
        stderr: `connection to ${this.address} lost: ${this.lost.message}`,
      });
    return new Promise((resolve) => {
      // sshd makes the login shell a session leader: its pid is the group to kill on interrupt.
      this.transport.exec(`echo "@@pid $$"; ${line}`, (error, channel) => {
        if (error) {
          options.stdout?.end();
          return resolve({ code: null, stdout: '', stderr: error.message });
        }
        this.channels.set(channel, undefined);
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        let code: number | null = null;
        channel.on('data', (d: Buffer) => {
          if (out.length === 0 && this.channels.get(channel) === undefined) {
            const match = /^@@pid (\d+)\n/.exec(d.toString('latin1'));
            if (match) {
              this.channels.set(channel, Number(match[1]));
              d = d.subarray(match[0].length);
            }
          }
          if (!options.stdout) out.push(d);
          else if (d.length && !options.stdout.write(d)) {
            channel.pause();
            options.stdout.once('drain', () => channel.resume());
          }
        });
        channel.stderr.on('data', (d: Buffer) => err.push(d));
        channel.on('exit', (exitCode: number | null) => (code = typeof exitCode === 'number' ? exitCode : null));
        channel.on('close', () => {
          this.channels.delete(channel);
          options.stdout?.end();
          resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
        });
        const stdin = options.stdin;
        if (stdin === undefined) channel.end();
        else if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) channel.end(stdin);
        else {
          (stdin as Readable).on('error', () => channel.close());
          (stdin as Readable).pipe(channel);
        }
      });
    });
  }

  private async runLockScript(script: Shell, token = ''): Promise<string> {
    const result = await this.exec(script);
    if (result.code !== 0) {
      // The lock may have been taken before the command after it failed: give it back.
      if (/^@@acquired$/m.test(result.stdout)) await this.exec(releaseScript(this.deployTo, token));
      throw new CommandFailed(this.name, 'deploy lock', result);
    }
    return result.stdout;
  }

  async lock(owner: LockOwner, then?: Shell): Promise<HeldLock> {
    this.usesCode = true;
    let output = await this.runLockScript(acquireScript(this.deployTo, owner, '', then), owner.token);
    if (/^@@not-deploy-root$/m.test(output)) throw new ConfigError(notDeployRootMessage(this.name, this.deployTo));
    let held = /^@@held (.*)$/m.exec(output);
    const holder = held ? parseOwner(held[1]) : null;
    // A run of ours on this machine whose process is gone holds nothing: take its lock over by its token.
    if (holder && ownerDeadHere(holder)) {
      output = await this.runLockScript(acquireScript(this.deployTo, owner, holder.token, then), owner.token);
      held = /^@@held (.*)$/m.exec(output);
    }
    if (held) throw new LockHeld(this.name, parseOwner(held[1]));
    const recovered = /^@@recovered (.*)$/m.exec(output);
    this.heldToken = owner.token;
    this.lastTouch = Date.now();
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastTouch >= HEARTBEAT_MS) this.exec(sh`true`).catch(() => undefined);
    }, HEARTBEAT_MS / 3).unref();
    return {
      owner,
      recovered: recovered ? (parseOwner(recovered[1]) ?? undefined) : undefined,
      output: output.slice(output.indexOf('@@then\n') + '@@then\n'.length),
      // The release script checks the token itself (before the final command too): no guard in front.
      release: async (finalCommand?: Shell) => {
        clearInterval(this.heartbeat);
        this.heldToken = undefined;
        if (this.lockLost && !finalCommand) return undefined;
        return this.exec(releaseScript(this.deployTo, owner.token, finalCommand));
      },
    };
  }

  async readLockOwner(): Promise<LockOwner | null> {
    return printedOwner(await this.runLockScript(readOwnerScript(this.deployTo)));
  }

  async breakLock(): Promise<LockOwner | null> {
    const output = (await this.runLockScript(breakScript(this.deployTo))).trim();
    if (output === '@@not-deploy-root') throw new ConfigError(notDeployRootMessage(this.name, this.deployTo));
    return printedOwner(output);
  }

  async interrupt(): Promise<void> {
    const groups = [...this.channels.values()].filter((pid): pid is number => pid !== undefined);
    if (groups.length) {
      // Not behind the lock guard: these are our own processes, to stop even when the lock is lost.
      const kill = this.send(sh`kill -TERM ${groups.map((pid) => `-${pid}`)} 2>/dev/null; true`);
      await Promise.race([kill, new Promise((resolve) => setTimeout(resolve, 3000).unref())]);
    }
    for (const channel of this.channels.keys()) channel.close();
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    if (this.codeListed) {
      const held = [...this.codeKnown, ...this.codeSent];
      writeCodeRecord(codeRecordFile(this.address, this.deployTo, this.hostKey), new Set(held));
    }
    for (const channel of this.channels.keys()) channel.close();
    await this.handOver?.().catch(() => undefined);
    this.transport.close();
  }
}

export async function connectSshHost(h: HostConfig, config: ResolvedConfig, options: ConnectOptions): Promise<Host> {
  const endpoint = await resolveEndpoint(h);
  const settings = { knownHosts: config.knownHosts, connectTimeoutSeconds: config.connectTimeoutSeconds };
  // A kept connection is asked for by where and as whom: the key and passphrase never go to the socket.
  const target = {
    host: endpoint.host,
    port: endpoint.port,
    username: endpoint.username,
    proxyJump: endpoint.proxyJump,
  };
  const kept: KeptHost = { name: h.name, target, settings };
  const broker =
    config.keepConnections > 0 ? await useBroker(config.keepConnections, config.keepConnectionsMaxAge) : undefined;
  const through = broker && 'connect' in broker ? await broker.connect(kept) : broker;
  if (through && 'exec' in through) return new SshHost(h.name, h.deployTo, h.roles, through, endpoint);
  if (through && 'unavailable' in through && !through.quiet)
    options.onNotice?.(`${h.name}: connecting directly, not kept open (${through.unavailable})`);
  const accepted: AcceptedHostKey[] = [];
  const ssh = await openConnection(h.name, endpoint, settings, options.trustNewHosts, accepted);
  const host = SshHost.direct(h.name, h.deployTo, h.roles, ssh, endpoint);
  host.hostKey = accepted[accepted.length - 1]?.blob;
  if (broker && 'handOver' in broker) host.handOver = () => broker.handOver({ ...kept, endpoint });
  return host;
}

/** The broker process's body: its connections are opened and verified exactly as a run's own. */
export function runBroker(keepSeconds: number, maxAgeSeconds: number): Promise<void> {
  return serveBroker<Endpoint>(keepSeconds, maxAgeSeconds, async ({ name, endpoint, settings }) => {
    const accepted: AcceptedHostKey[] = [];
    // The run that handed the host over recorded its key if it was new: the broker records none.
    const ssh = await openConnection(name, endpoint, settings, false, accepted);
    return {
      ssh,
      hostKeyRefused: () => {
        for (const key of accepted) {
          const verdict = verifyHostKey(key.file, key.name, key.blob, false);
          if (!verdict.ok) return verdict.reason;
        }
        return undefined;
      },
    };
  });
}

export interface ConnectOptions {
  trustNewHosts: boolean;
  onNotice?: (text: string) => void;
}
