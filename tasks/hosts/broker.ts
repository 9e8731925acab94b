// Keeps SSH connections open between runs when the config asks for it (keepConnections: seconds),
// as OpenSSH's ControlPersist does: one broker process per user, on a unix socket in a private
// (0700) directory (see broker-dir.ts), holds one verified connection per host and runs each command
// on a channel of it, so a run skips the handshakes. It exits after keepConnections seconds without a
// client, and once its connections are keepConnectionsMaxAge seconds old and no run uses them.
//
// Key material reaches the broker once, from the run that starts it, over the pipe of the broker's
// stdin (no file system path another user could reach); it stays in the broker's memory for its
// life, to reconnect a host whose connection dropped. Later runs ask for a host by address, port,
// user and jump host only: whatever answers on the socket never learns a key or a passphrase.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import type { ResolvedConfig } from '../config/types.js';
import { ConfigError } from '../lib/errors.js';
import { brokerSocketState, openBrokerDir } from './broker-dir.js';

/** The hidden command line that turns a slipway process into the broker. */
export const BROKER_COMMAND = '__slipway-broker';

const STDOUT = 1;

const STDERR = 2;

const EXIT = 3;

const REPLY = 4;

export type ConnectionSettings = Pick<ResolvedConfig, 'knownHosts' | 'connectTimeoutSeconds'>;

/** Which kept connection a run asks for: the host by where and as whom, never with key material. */
export interface KeptHost {
  name: string;
  target: { host: string; port: number; username: string; proxyJump?: string };
  settings: ConnectionSettings;
}

interface ConnectRequest extends KeptHost {
  op: 'connect';
}

/** What the run that starts the broker gives it for a host: the endpoint with its key, to (re)connect. */
export interface HandOver<E> extends KeptHost {
  endpoint: E;
}

type Connection = import('node-ssh').NodeSSH;

/** A connection the broker keeps, and how to tell that known_hosts no longer accepts its host (or jump host) key. */
export interface KeptConnection {
  ssh: Connection;
  hostKeyRefused(): string | undefined;
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
  /**
   * The host's transport over a live connection the broker holds, whose host key known_hosts still accepts; or
   * why not.
   */
  connect(request: KeptHost): Promise<Transport | Unavailable>;
}

/** A broker just started for the next runs: this run connects directly, then hands its endpoints over. */
export interface StartingBroker {
  /** Gives the broker the host, key included, to open its own connection to once it has started. */
  handOver<E>(request: HandOver<E>): Promise<void>;
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
export function useBroker(keepSeconds: number, maxAgeSeconds: number): Promise<Broker | StartingBroker | Unavailable> {
  thisRun ??= findOrStartBroker(keepSeconds, maxAgeSeconds);
  return thisRun;
}

async function findOrStartBroker(
  keepSeconds: number,
  maxAgeSeconds: number,
): Promise<Broker | StartingBroker | Unavailable> {
  const dir = openBrokerDir();
  if ('unsafe' in dir) return { unavailable: dir.unsafe };
  const socket = brokerSocketState(dir);
  if (typeof socket === 'object') return { unavailable: socket.unsafe };
  // Every connection goes through the held directory, never through its name again.
  const socketPath = path.join(dir.pinned, 'broker.sock');
  const request = (header: object): Promise<net.Socket> =>
    connectSocket(socketPath).then((s) => {
      s.write(`${JSON.stringify(header)}\n`);
      return s;
    });
  const probe = socket ? await connectSocket(socketPath).catch(() => null) : null;
  if (!probe && startedRecently(dir.pinned))
    return { unavailable: 'the connection broker is still starting', quiet: true };
  if (!probe) {
    // The same entry (tsx or the prebuilt bundle) with the hidden command; it outlives this run. Its
    // stdin takes the hand-overs: they wait in the pipe until it has started, and this run does not.
    // Its fd 3 is the directory checked here, so it listens in that one whatever its name means now.
    const child = spawn(
      process.execPath,
      [...process.execArgv, process.argv[1], BROKER_COMMAND, String(keepSeconds), String(maxAgeSeconds)],
      {
        detached: true,
        stdio: ['pipe', 'ignore', 'ignore', dir.fd],
      },
    );
    child.unref();
    (child.stdin as net.Socket).unref();
    child.stdin!.on('error', () => undefined);
    return {
      async handOver<E>(options: HandOver<E>): Promise<void> {
        child.stdin!.write(`${JSON.stringify(options)}\n`);
      },
    };
  }
  probe.destroy();
  return {
    async connect(options: KeptHost): Promise<Transport | Unavailable> {
      const s = await request({ op: 'connect', ...options } satisfies ConnectRequest);
      const reply = await new Promise<{ key?: string; error?: string; config?: boolean } & Partial<Unavailable>>(
        (resolve) => {
          s.on(
            'data',
            frameReader((type, payload) => type === REPLY && resolve(JSON.parse(payload.toString()))),
          );
          s.on('close', () => resolve({ error: `${options.name}: the connection broker went away` }));
        },
      );
      if (reply.unavailable) {
        s.destroy();
        return { unavailable: reply.unavailable, quiet: reply.quiet };
      }
      if (!reply.key) throw reply.config ? new ConfigError(reply.error!) : new Error(reply.error);
      // Held open for the run: while a run uses a connection, the broker does not close it for its age.
      s.unref();
      const key = reply.key;
      return {
        exec(command, callback) {
          request({ op: 'exec', key, command } satisfies ExecRequest).then(
            (s) => callback(undefined, new RelayedChannel(s)),
            (error: Error) => callback(error, undefined as never),
          );
        },
        close: () => s.destroy(),
      };
    },
  };
}

const keyOf = (host: KeptHost) =>
  createHash('sha256')
    .update(JSON.stringify([host.target, host.settings]))
    .digest('hex');

/**
 * Runs the broker: serves connect and exec requests until it has had no client for keepSeconds, or
 * none since its connections reached maxAgeSeconds. It listens in the directory the starting run
 * checked, inherited as fd 3 (see findOrStartBroker), whatever that directory's name means now.
 */
export async function serveBroker<E>(
  keepSeconds: number,
  maxAgeSeconds: number,
  open: (handOver: HandOver<E>) => Promise<KeptConnection>,
): Promise<void> {
  const dir = '/proc/self/fd/3';
  const socketPath = path.join(dir, 'broker.sock');
  if (
    await connectSocket(socketPath).then(
      (s) => {
        s.destroy();
        return true;
      },
      () => false,
    )
  )
    return; // another broker serves
  rmSync(socketPath, { force: true });
  /** Per host handed over: the hand-over (its key, to reconnect) and the connection while it is open. */
  const held = new Map<string, { handOver: HandOver<E>; kept?: KeptConnection; opening?: Promise<void> }>();
  let clients = 0;
  let expired = false;
  let idle: NodeJS.Timeout | undefined;
  const server = net.createServer({ allowHalfOpen: true });
  const pidFile = path.join(dir, 'broker.pid');
  const shutdown = () => {
    for (const { kept } of held.values()) kept?.ssh.dispose();
    server.close();
    rmSync(socketPath, { force: true });
    rmSync(pidFile, { force: true });
    process.exit(0);
  };
  const alive = (ssh: Connection) =>
    Promise.race([
      ssh.execCommand('true').then(
        (r) => r.code === 0,
        () => false,
      ),
      new Promise<boolean>((r) => setTimeout(() => r(false), 3000)),
    ]);

  // A hand-over and the next run asking for the same host at once share one attempt.
  type Entry = NonNullable<ReturnType<typeof held.get>>;
  const reopen = (entry: Entry): Promise<void> => {
    entry.opening ??= (async () => {
      entry.kept?.ssh.dispose();
      entry.kept = undefined;
      const kept = await open(entry.handOver);
      kept.ssh.connection!.on('error', () => undefined);
      const gone = () => {
        if (entry.kept === kept) entry.kept = undefined;
      };
      // Through a jump host's channel ssh2 may emit only 'end' when the connection is gone.
      kept.ssh.connection!.on('end', gone);
      kept.ssh.connection!.on('close', gone);
      entry.kept = kept;
    })().finally(() => {
      entry.opening = undefined;
    });
    return entry.opening;
  };

  const connect = async (request: ConnectRequest): Promise<{ key: string } | Unavailable> => {
    if (expired)
      return {
        unavailable: `kept connections are at most ${maxAgeSeconds} s old (keepConnectionsMaxAge)`,
        quiet: true,
      };
    const key = keyOf(request);
    const entry = held.get(key);
    if (!entry) return { unavailable: 'the connection broker was not handed this host' };
    await entry.opening?.catch(() => undefined);
    if (entry.kept) {
      // On every use: a key since removed from known_hosts (or changed, or @revoked) ends the connection,
      // and the host is forgotten, so the run connects directly and is refused as any run would be.
      const refused = entry.kept.hostKeyRefused();
      if (refused) {
        entry.kept.ssh.dispose();
        held.delete(key);
        return { unavailable: `kept connection closed: ${refused}` };
      }
      if (await alive(entry.kept.ssh)) return { key };
    }
    await reopen(entry);
    return { key };
  };

  const exec = (socket: net.Socket, request: ExecRequest, rest: Buffer) => {
    const connection = held.get(request.key)?.kept?.ssh.connection;
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
      channel.on('exit', (code: number | null) =>
        socket.write(frame(EXIT, JSON.stringify({ code: typeof code === 'number' ? code : null }))),
      );
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
      if (--clients > 0) return;
      if (expired) shutdown();
      else idle = setTimeout(shutdown, keepSeconds * 1000);
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
      const request = JSON.parse(head.subarray(0, end).toString()) as ConnectRequest | ExecRequest;
      if (request.op === 'exec') return exec(socket, request, head.subarray(end + 1));
      socket.resume();
      connect(request).then(
        (reply) => socket.end(frame(REPLY, JSON.stringify(reply))),
        (error: Error) =>
          socket.end(frame(REPLY, JSON.stringify({ error: error.message, config: error instanceof ConfigError }))),
      );
    };
    socket.on('data', onData);
  });
  // The run that started us hands its hosts over on stdin, one a line; read from before we listen, so
  // that a run asking for a host right after finds it.
  let handedOver = '';
  process.stdin.on('data', (data: Buffer) => {
    const lines = (handedOver + data.toString()).split('\n');
    handedOver = lines.pop()!;
    for (const line of lines) {
      if (!line) continue;
      const handOver = JSON.parse(line) as HandOver<E>;
      if (held.has(keyOf(handOver))) continue; // two host entries for one host: one connection
      const entry = { handOver };
      held.set(keyOf(handOver), entry);
      reopen(entry).catch(() => undefined); // a run asking for it gets the error of a new attempt
    }
  });
  process.stdin.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => server.listen(socketPath, resolve).once('error', reject));
  writeFileSync(pidFile, `${process.pid}\n`);
  rmSync(path.join(dir, 'broker.starting'), { force: true });
  idle = setTimeout(shutdown, keepSeconds * 1000);
  // Past their maximum age the connections serve the runs using them, no new one; then the broker exits.
  setTimeout(() => {
    expired = true;
    if (clients === 0) shutdown();
  }, maxAgeSeconds * 1000);
}
