// A real S3-compatible server for end-to-end tests: OpenStack Swift (Debian's packages) with its s3api
// middleware, on one loopback address. Swift reads /etc/swift/swift.conf whatever its config says, so each
// server runs in a private mount namespace (`unshare --mount`) with the test's own config dir bind-mounted
// over /etc/swift; rings, storage and logs live in the test's temp dir. One proxy, account, container and
// object server, each a single process (workers = 0), each stopped by its PID.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './sshd.js';

export interface SwiftServer {
  /** http://127.0.0.x:port: the S3 endpoint (path-style buckets). */
  endpoint: string;
  /** The S3 access key and secret (a tempauth user of this server only). */
  accessKeyId: string;
  secretAccessKey: string;
  dir: string;
  pids(): number[];
  /** Stops the proxy (the S3 endpoint) by its PID and waits for it to be gone: the store is down, its data kept. */
  down(): Promise<void>;
  /** Starts the proxy again on its address and port and waits until it answers. */
  up(): Promise<void>;
  /** Stops every server by PID, waits for them to be gone, removes the dir. */
  stop(): Promise<void>;
}

const SERVERS = ['account', 'container', 'object', 'proxy'] as const;

/** Why Swift cannot run here (a missing command), or undefined when it can. */
export function swiftMissing(): string | undefined {
  const commands = [...SERVERS.map((s) => `/usr/bin/swift-${s}-server`), '/usr/bin/swift-ring-builder'];
  const missing = commands.filter((c) => !existsSync(c));
  if (missing.length) return `not installed: ${missing.join(', ')} (apt-get install swift swift-proxy …; see .ci/run)`;
  if (process.getuid?.() !== 0) return 'needs root (unshare --mount and a bind mount over /etc/swift)';
  return undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function backendConf(dir: string, kind: 'account' | 'container' | 'object', address: string, port: number): string {
  return `[DEFAULT]
bind_ip = ${address}
bind_port = ${port}
workers = 0
user = root
swift_dir = /etc/swift
devices = ${dir}/srv
mount_check = false
log_name = ${kind}-server

[pipeline:main]
pipeline = ${kind}-server

[app:${kind}-server]
use = egg:swift#${kind}
`;
}

function proxyConf(
  address: string,
  port: number,
  user: string,
  key: string,
  noMemcache: number,
  maxUploadParts: number,
): string {
  return `[DEFAULT]
bind_ip = ${address}
bind_port = ${port}
workers = 0
user = root
swift_dir = /etc/swift
log_name = proxy-server

[pipeline:main]
# slo: S3 multipart uploads are completed as static large objects.
# cache: tempauth refuses to work without the memcache middleware in the pipeline, though S3 requests (signed
# with the key) need no cached token. It points at a port where nothing listens: every lookup misses at once.
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
max_upload_part_num = ${maxUploadParts}

[filter:tempauth]
use = egg:swift#tempauth
user_${user.replace(':', '_')} = ${key} .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = ${address}:${noMemcache}

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
`;
}

/** A loopback address of its own (127.0.0.x is shared with the sshd hosts; these are not). */
function randomLoopback(): string {
  const b = randomBytes(2);
  return `127.83.${b[0]}.${(b[1] % 250) + 2}`;
}

/** Accepts a TCP connection: the backends have no health URL of their own, and the proxy's says only it is up. */
function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(2000, () => socket.destroy());
    socket.on('connect', () => {
      socket.end();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
    socket.on('close', () => resolve(false));
  });
}

async function healthy(url: string, backends: Array<[string, number]>): Promise<boolean> {
  for (const [host, port] of backends) if (!(await listening(host, port))) return false;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return response.ok && (await response.text()) === 'OK';
  } catch {
    return false;
  }
}

export interface SwiftOptions {
  /** The most parts a multipart upload may have (s3api's max_upload_part_num; S3's is 10,000): a part beyond it is refused. */
  maxUploadParts?: number;
}

export async function startSwift(options: SwiftOptions = {}): Promise<SwiftServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'slipway-swift-'));
  const etc = path.join(dir, 'etc');
  mkdirSync(path.join(dir, 'srv', 'd1'), { recursive: true });
  mkdirSync(etc);
  const address = randomLoopback();
  const ports = {
    account: await freePort(address),
    container: await freePort(address),
    object: await freePort(address),
    proxy: await freePort(address),
    noMemcache: await freePort(address),
  };
  const account = 'slipway';
  const user = `${account}:tester`;
  const key = randomBytes(12).toString('hex');
  writeFileSync(
    path.join(etc, 'swift.conf'),
    `[swift-hash]\nswift_hash_path_suffix = ${randomBytes(8).toString('hex')}\n` +
      `swift_hash_path_prefix = ${randomBytes(8).toString('hex')}\n\n` +
      '[storage-policy:0]\nname = Policy-0\ndefault = yes\n',
  );
  for (const kind of ['account', 'container', 'object'] as const) {
    writeFileSync(path.join(etc, `${kind}-server.conf`), backendConf(dir, kind, address, ports[kind]));
    const builder = path.join(etc, `${kind}.builder`);
    execFileSync('swift-ring-builder', [builder, 'create', '6', '1', '1'], { stdio: 'ignore' });
    execFileSync('swift-ring-builder', [builder, 'add', `r1z1-${address}:${ports[kind]}/d1`, '100'], {
      stdio: 'ignore',
    });
    execFileSync('swift-ring-builder', [builder, 'rebalance'], { stdio: 'ignore' });
  }
  writeFileSync(
    path.join(etc, 'proxy-server.conf'),
    proxyConf(address, ports.proxy, user, key, ports.noMemcache, options.maxUploadParts ?? 1000),
  );

  const children: ChildProcess[] = [];
  const killNow = () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killNow);
  const stop = async () => {
    process.removeListener('exit', killNow);
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    for (let waited = 0; waited < 10_000; waited += 50) {
      if (children.every((c) => c.exitCode !== null || c.signalCode !== null)) break;
      await sleep(50);
    }
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const spawnServer = (kind: (typeof SERVERS)[number]) => {
    const log = openSync(path.join(dir, `${kind}.log`), 'a');
    // unshare without --fork execs: the PID is the server's own, so stopping it by PID stops it.
    const child = spawn(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        // setpriv: the server dies with the test process even if that is killed before it calls stop().
        'mount --bind "$1" /etc/swift && exec setpriv --pdeathsig KILL "$2" "$3"',
        'sh',
        etc,
        `/usr/bin/swift-${kind}-server`,
        path.join(etc, `${kind}-server.conf`),
      ],
      { stdio: ['ignore', log, log] },
    );
    children.push(child);
    return child;
  };
  const url = `http://${address}:${ports.proxy}/healthcheck`;
  const backends: Array<[string, number]> = [
    [address, ports.account],
    [address, ports.container],
    [address, ports.object],
  ];
  const waitHealthy = async (started: ChildProcess[]) => {
    const since = Date.now();
    while (!(await healthy(url, backends))) {
      const dead = started.find((c) => c.exitCode !== null);
      if (dead || Date.now() - since > 150_000) {
        const logs = SERVERS.map((k) => `${k}: ${readFileSync(path.join(dir, `${k}.log`), 'utf8').slice(-1500)}`);
        throw new Error(`swift did not come up on ${address}:${ports.proxy}:\n${logs.join('\n')}`);
      }
      await sleep(200);
    }
  };
  let proxy: ChildProcess;
  try {
    const started = SERVERS.map(spawnServer);
    proxy = started[SERVERS.indexOf('proxy')];
    await waitHealthy(started);
  } catch (error) {
    await stop();
    throw error;
  }
  const down = async () => {
    if (proxy.exitCode !== null || proxy.signalCode !== null) return;
    const gone = new Promise((resolve) => proxy.once('exit', resolve));
    proxy.kill('SIGTERM');
    await gone;
  };
  const up = async () => {
    proxy = spawnServer('proxy');
    await waitHealthy([proxy]);
  };
  return {
    endpoint: `http://${address}:${ports.proxy}`,
    accessKeyId: user,
    secretAccessKey: key,
    dir,
    pids: () => children.map((c) => c.pid!),
    down,
    up,
    stop,
  };
}
