// Keeps SSH connections open between runs when the config asks for it (keepConnections: seconds),
// as OpenSSH's ControlPersist does: one broker process per user, on a unix socket in a private
// (0700) directory, holds one verified connection per endpoint and runs each command on a channel
// of it, so a run skips the handshakes. It exits after keepConnections seconds without a client.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import type { ResolvedConfig } from './config.js';
import { ConfigError } from './config.js';

/** The hidden command line that turns a slipway process into the broker. */
export const BROKER_COMMAND = '__slipway-broker';

const STDOUT = 1;
const STDERR = 2;
const EXIT = 3;
const REPLY = 4;

export type ConnectionSettings = Pick<ResolvedConfig, 'knownHosts' | 'connectTimeoutSeconds'>;

export interface ConnectRequest<E> {
  op: 'connect';
  name: string;
  endpoint: E;
  settings: ConnectionSettings;
  trustNewHosts: boolean;
}

interface ExecRequest {
  op: 'exec';
  key: string;
  command: string;
}

/** What a channel needs to offer SshHost: ssh2's ClientChannel, or a channel relayed by the broker. */
export type Channel = Duplex & { stderr: NodeJS.ReadableStream; close(): void };

/** The connection a host runs its commands on. */
export interface Transport {
  exec(command: string, callback: (error: Error | undefined, channel: Channel) => void): void;
  close(): void;
}

function frame(type: number, payload: Buffer | string): Buffer {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const head = Buffer.alloc(5);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

function frameReader(onFrame: (type: number, payload: Buffer) => void): (data: Buffer) => void {
  let pending = Buffer.alloc(0);
  return (data) => {
    pending = Buffer.concat([pending, data]);
    while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
      const length = pending.readUInt32BE(1);
      onFrame(pending.readUInt8(0), pending.subarray(5, 5 + length));
      pending = pending.subarray(5 + length);
    }
  };
}

/** The private directory of this user's broker, or null (with the reason) when it is not safe to use. */
function brokerDir(): { dir: string } | { unsafe: string } {
  const uid = userInfo().uid;
  const dir = path.join(tmpdir(), `slipway-${uid}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = lstatSync(dir);
  if (!stat.isDirectory() || stat.uid !== uid || (stat.mode & 0o077) !== 0) return { unsafe: `${dir} must be a directory of yours with mode 0700` };
  return { dir };
}

function connectSocket(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path: socketPath, allowHalfOpen: true });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/**
 * Marks a broker as starting (the file is removed once it listens), so that a run right after this
 * one connects directly instead of starting a second broker. A mark older than 10 s is stale.
 */
function startedRecently(dir: string): boolean {
  const mark = path.join(dir, 'broker.starting');
  try {
    if (Date.now() - statSync(mark).mtimeMs < 10_000) return true;
    rmSync(mark, { force: true });
  } catch {
    // no mark
  }
  try {
    writeFileSync(mark, `${process.pid}\n`, { flag: 'wx' });
    return false;
  } catch {
    return true; // another run marked it just now
  }
}

/** A command's channel, relayed through the broker over one unix socket connection. */
class RelayedChannel extends Duplex {
  readonly stderr = new PassThrough();

  constructor(private readonly socket: net.Socket) {
    super({ emitClose: false, autoDestroy: false });
    socket.on(
      'data',
      frameReader((type, payload) => {
        if (type === STDOUT) this.push(payload);
        else if (type === STDERR) this.stderr.write(payload);
        else if (type === EXIT) this.emit('exit', (JSON.parse(payload.toString()) as { code: number | null }).code);
      }),
    );
    socket.on('error', () => undefined); // the 'close' below ends the command either way
    socket.on('close', () => {
      this.push(null);
      this.stderr.end();
      this.emit('close');
    });
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.socket.write(chunk, done);
  }

  override _final(done: (error?: Error | null) => void): void {
    this.socket.end();
    done();
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface Broker {
  /** Makes sure the broker holds a live, verified connection to the endpoint; returns the host's transport. */
  connect<E>(request: Omit<ConnectRequest<E>, 'op'>): Promise<Transport>;
}

/** A broker just started for the next runs: this run connects directly, then hands its endpoints over. */
export interface StartingBroker {
  /** Asks the broker to open its own connection to the endpoint once it has started. */
  handOver<E>(request: Omit<ConnectRequest<E>, 'op'>): Promise<void>;
}

/** Why this run connects directly; quiet when that is expected (a broker is on its way). */
export interface Unavailable {
  unavailable: string;
  quiet?: boolean;
}

let thisRun: Promise<Broker | StartingBroker | Unavailable> | undefined;

/**
 * The user's broker. When none runs, one is started for the next runs and this run does not wait
 * for it (under tsx its start-up alone takes about a second). Asked once per run, by every host.
 */
export function useBroker(keepSeconds: number): Promise<Broker | StartingBroker | Unavailable> {
  return (thisRun ??= findOrStartBroker(keepSeconds));
}

async function findOrStartBroker(keepSeconds: number): Promise<Broker | StartingBroker | Unavailable> {
  const where = brokerDir();
  if ('unsafe' in where) return { unavailable: where.unsafe };
  const socketPath = path.join(where.dir, 'broker.sock');
  const request = (header: object): Promise<net.Socket> => connectSocket(socketPath).then((s) => (s.write(`${JSON.stringify(header)}\n`), s));
  const probe = await connectSocket(socketPath).catch(() => null);
  if (!probe && startedRecently(where.dir)) return { unavailable: 'the connection broker is still starting', quiet: true };
  if (!probe) {
    // The same entry (tsx or the prebuilt bundle) with the hidden command; it outlives this run. Its
    // stdin takes the hand-overs: they wait in the pipe until it has started, and this run does not.
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1], BROKER_COMMAND, socketPath, String(keepSeconds)], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    child.unref();
    (child.stdin as net.Socket).unref();
    child.stdin!.on('error', () => undefined);
    return {
      async handOver<E>(options: Omit<ConnectRequest<E>, 'op'>): Promise<void> {
        child.stdin!.write(`${JSON.stringify({ op: 'connect', ...options })}\n`);
      },
    };
  }
  probe.destroy();
  return {
    async connect<E>(options: Omit<ConnectRequest<E>, 'op'>): Promise<Transport> {
      const s = await request({ op: 'connect', ...options });
      const reply = await new Promise<{ key?: string; error?: string; config?: boolean }>((resolve) => {
        s.on('data', frameReader((type, payload) => type === REPLY && resolve(JSON.parse(payload.toString()))));
        s.on('close', () => resolve({ error: `${options.name}: the connection broker went away` }));
      });
      s.destroy();
      if (!reply.key) throw reply.config ? new ConfigError(reply.error!) : new Error(reply.error);
      const key = reply.key;
      return {
        exec(command, callback) {
          request({ op: 'exec', key, command } satisfies ExecRequest).then(
            (s) => callback(undefined, new RelayedChannel(s)),
            (error: Error) => callback(error, undefined as never),
          );
        },
        close() {},
      };
    },
  };
}

type Connection = import('node-ssh').NodeSSH;

/** Runs the broker: serves connect and exec requests until it has had no client for keepSeconds. */
export async function serveBroker(socketPath: string, keepSeconds: number, open: (request: ConnectRequest<unknown>) => Promise<Connection>): Promise<void> {
  if (await connectSocket(socketPath).then((s) => (s.destroy(), true), () => false)) return; // another broker serves
  rmSync(socketPath, { force: true });
  const connections = new Map<string, Connection>();
  let clients = 0;
  let idle: NodeJS.Timeout | undefined;
  const server = net.createServer({ allowHalfOpen: true });
  const pidFile = path.join(path.dirname(socketPath), 'broker.pid');
  const shutdown = () => {
    for (const ssh of connections.values()) ssh.dispose();
    server.close();
    rmSync(socketPath, { force: true });
    rmSync(pidFile, { force: true });
    process.exit(0);
  };
  const alive = (ssh: Connection) =>
    Promise.race([ssh.execCommand('true').then((r) => r.code === 0, () => false), new Promise<boolean>((r) => setTimeout(() => r(false), 3000))]);

  // Runs asking for the same endpoint at once (a hand-over and the next run) share one attempt.
  const opening = new Map<string, Promise<void>>();
  const connect = async (request: ConnectRequest<unknown>): Promise<string> => {
    const key = createHash('sha256').update(JSON.stringify([request.endpoint, request.settings])).digest('hex');
    const pending = opening.get(key);
    if (pending) return pending.then(() => key);
    const known = connections.get(key);
    if (known && (await alive(known))) return key;
    const attempt = (async () => {
      known?.dispose();
      connections.delete(key);
      const ssh = await open(request);
      ssh.connection!.on('error', () => undefined);
      ssh.connection!.on('close', () => connections.get(key) === ssh && connections.delete(key));
      connections.set(key, ssh);
    })().finally(() => opening.delete(key));
    opening.set(key, attempt);
    await attempt;
    return key;
  };

  const exec = (socket: net.Socket, request: ExecRequest, rest: Buffer) => {
    const connection = connections.get(request.key)?.connection;
    // A paused socket would never see its client leave: resume it once stdin has somewhere to go.
    const fail = (message: string) => {
      socket.resume();
      socket.end(Buffer.concat([frame(STDERR, message), frame(EXIT, JSON.stringify({ code: null }))]));
    };
    if (!connection) return fail('connection lost: the broker no longer holds it');
    connection.exec(request.command, (error: Error | undefined, channel: ClientChannel) => {
      if (error) return fail(error.message);
      channel.on('data', (d: Buffer) => socket.write(frame(STDOUT, d)));
      channel.stderr.on('data', (d: Buffer) => socket.write(frame(STDERR, d)));
      channel.on('exit', (code: number | null) => socket.write(frame(EXIT, JSON.stringify({ code: typeof code === 'number' ? code : null }))));
      channel.on('close', () => socket.end());
      socket.on('close', () => channel.close());
      if (rest.length) channel.write(rest);
      socket.pipe(channel);
    });
  };

  server.on('connection', (socket) => {
    clients++;
    clearTimeout(idle);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (--clients === 0) idle = setTimeout(shutdown, keepSeconds * 1000);
    });
    let head = Buffer.alloc(0);
    // A client that leaves before sending a request (a probe): half-open sockets would keep us up.
    socket.on('end', () => head.indexOf('\n') < 0 && socket.end());
    const onData = (data: Buffer) => {
      head = Buffer.concat([head, data]);
      const end = head.indexOf('\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.pause(); // stdin that follows the header waits until the channel is there to take it
      const request = JSON.parse(head.subarray(0, end).toString()) as ConnectRequest<unknown> | ExecRequest;
      if (request.op === 'exec') return exec(socket, request, head.subarray(end + 1));
      socket.resume();
      connect(request).then(
        (key) => socket.end(frame(REPLY, JSON.stringify({ key }))),
        (error: Error) => socket.end(frame(REPLY, JSON.stringify({ error: error.message, config: error instanceof ConfigError }))),
      );
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve, reject) => server.listen(socketPath, resolve).once('error', reject));
  writeFileSync(pidFile, `${process.pid}\n`);
  rmSync(path.join(path.dirname(socketPath), 'broker.starting'), { force: true });
  // The run that started us hands its hosts over on stdin, one connect request a line.
  let handedOver = '';
  process.stdin.on('data', (data: Buffer) => {
    const lines = (handedOver + data.toString()).split('\n');
    handedOver = lines.pop()!;
    for (const line of lines) if (line) connect(JSON.parse(line) as ConnectRequest<unknown>).catch(() => undefined);
  });
  process.stdin.on('error', () => undefined);
  idle = setTimeout(shutdown, keepSeconds * 1000);
}
