// Real OpenSSH hosts for end-to-end tests: N sshd servers on 127.0.0.2, .3, … each on a free port,
// with its own host key and its own mount namespace in which a private folder is bind-mounted on
// /srv, so every fake host has its own filesystem. Also a TCP relay that cuts connections after N
// bytes. Everything listens on loopback only, and every process is stopped by PID.
import { type ChildProcess, execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const DEPLOY_USER = 'slipway';
const SSHD = '/usr/sbin/sshd';

export interface TestHost {
  name: string;
  address: string;
  port: number;
  user: typeof DEPLOY_USER;
  /** The folder that this host sees as /srv. */
  srvDir: string;
  /** The listening sshd's own PID (changes when the host is restarted). */
  pid: number;
  logFile: string;
  configFile: string;
  /** Private host key; `${hostKey}.pub` is the public half. */
  hostKey: string;
}

export interface SshCounts {
  connections: number;
  execRequests: number;
  subsystemRequests: number;
}

export interface SshFleet {
  hosts: TestHost[];
  clientKey: string;
  /** Lists every host's current key; rewritten by regenerateHostKey. */
  knownHosts: string;
  dir: string;
  stop(): Promise<void>;
  /** SIGKILLs every process of the host (its sshd, sessions and their commands) now. */
  kill(host: TestHost): void;
  /** Stops the host's sshd if it still runs and starts it again: same address, port and key. */
  restart(host: TestHost): Promise<void>;
  /** Same as restart; reads better after kill(). */
  revive(host: TestHost): Promise<void>;
  regenerateHostKey(host: TestHost): Promise<void>;
  /** What the host's sshd logged since it started or since resetCounts(host). */
  counts(host: TestHost): SshCounts;
  resetCounts(host: TestHost): void;
  /** A host entry for a deploy config: this host, logged in as the deploy user with the client key. */
  configHost(host: TestHost, deployTo: string): ConfigHost;
}

export interface ConfigHost {
  name: string;
  host: string;
  port: number;
  user: string;
  privateKey: string;
  deployTo: string;
}

export function freePort(address = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, address, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Two free ports on 127.0.0.1, held open together so that they differ (blue-green's listen 'port' slots). */
export async function twoFreePorts(): Promise<[number, number]> {
  const servers = [net.createServer(), net.createServer()];
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port) as [number, number];
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function readPasswdEntry(user: string): { uid: number; gid: number; home: string; shell: string } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  if (!line) return undefined;
  const [, , uid, gid, , home, shell] = line.split(':');
  return { uid: Number(uid), gid: Number(gid), home, shell };
}

/** A command over the user's own OpenSSH client to a test host: its exit status and output. */
export function sshRun(
  fleet: SshFleet,
  h: TestHost,
  command: string,
  knownHosts = fleet.knownHosts,
): Promise<{ code: number; out: string }> {
  const args = ['-i', fleet.clientKey, '-p', String(h.port), '-o', `UserKnownHostsFile=${knownHosts}`];
  return new Promise((resolve) =>
    execFile(
      'ssh',
      [...args, '-o', 'BatchMode=yes', `${h.user}@${h.address}`, command],
      { timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, out: `${stdout}${stderr}` }),
    ),
  );
}

/**
 * startSshHosts' privateDirs for hosts without npm: it lives in /usr/lib/node_modules here (/usr/bin/npm links
 * into it), so an empty folder made in `scratch` and mounted there hides it; node stays.
 */
export function withoutNpm(scratch: string): Record<string, string> {
  const empty = path.join(scratch, 'no-node-modules');
  mkdirSync(empty);
  return { '/usr/lib/node_modules': empty };
}

/** The deploy user's uid and gid (ensureDeployUser made it). */
export function deployUserIds(): { uid: number; gid: number } {
  const entry = readPasswdEntry(DEPLOY_USER);
  if (!entry) throw new Error(`no user ${DEPLOY_USER}: startSshHosts creates it`);
  return { uid: entry.uid, gid: entry.gid };
}

/**
 * Creates the deploy user or fixes its shell. Test files run in parallel and all call this, so it
 * only writes /etc/passwd when something is actually wrong (concurrent usermods fail on the lock).
 */
export function ensureDeployUser(shell: string): { uid: number; gid: number } {
  if (!readPasswdEntry(DEPLOY_USER)) {
    const created = spawnSync(
      'useradd',
      ['--system', '--create-home', '--home-dir', `/home/${DEPLOY_USER}`, '--shell', shell, DEPLOY_USER],
      { encoding: 'utf8' },
    );
    // Exit 9 = created meanwhile by another test file.
    if (created.status !== 0 && created.status !== 9) throw new Error(`useradd failed: ${created.stderr}`);
  }
  const user = readPasswdEntry(DEPLOY_USER)!;
  if (user.shell !== shell) execFileSync('usermod', ['--shell', shell, DEPLOY_USER]);
  if (!existsSync(user.home)) {
    mkdirSync(user.home, { recursive: true, mode: 0o755 });
    chownSync(user.home, user.uid, user.gid);
  }
  // useradd leaves the password "!" (locked), and sshd without PAM refuses locked accounts even
  // for key logins. "*" means "no password" without being locked.
  const shadow = readFileSync('/etc/shadow', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${DEPLOY_USER}:`));
  if (shadow?.split(':')[1].startsWith('!')) execFileSync('usermod', ['--password', '*', DEPLOY_USER]);
  return { uid: user.uid, gid: user.gid };
}

const keygen = (file: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', file]);

/** Inode of a mount namespace, or undefined if the process is gone or not ours to look at. */
function mountNamespaceOf(pid: number | string): number | undefined {
  try {
    return statSync(`/proc/${pid}/ns/mnt`).ino;
  } catch {
    return undefined;
  }
}

/** Every live process whose mount namespace is one of `namespaces` (inodes). */
function processesIn(namespaces: Set<number>): number[] {
  if (namespaces.size === 0) return [];
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && namespaces.has(mountNamespaceOf(entry) ?? -1))
    .map(Number);
}

function signal(pids: number[], sig: NodeJS.Signals) {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // Already gone.
    }
  }
}

/**
 * One sshd and its mount namespace. A host's processes are found by namespace rather than by
 * parent PID, because sessions outlive a killed sshd by being re-parented. We hold the namespace
 * open by fd so its inode cannot be reused by someone else's namespace while we still look for it.
 */
interface Instance {
  child: ChildProcess;
  exited: Promise<void>;
  namespaceFd?: number;
  namespace?: number;
}

async function waitForBanner(
  host: TestHost,
  instance: Instance,
  probePorts: Set<number>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  instance.exited.then(() => (gone = true));
  for (;;) {
    if (gone) throw new Error(`sshd for ${host.name} exited at start:\n${tail(host.logFile)}`);
    const ok = await new Promise<boolean>((resolve) => {
      // From the host's own address, so counts() can tell these probes from real clients.
      const socket = net.connect({ host: host.address, port: host.port, localAddress: host.address });
      socket.setTimeout(2_000, () => socket.destroy());
      socket.once('connect', () => probePorts.add(socket.localPort!));
      socket.once('data', (d) => {
        socket.destroy();
        resolve(d.toString().startsWith('SSH-'));
      });
      socket.once('error', () => resolve(false));
      socket.once('close', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline)
      throw new Error(`sshd for ${host.name} on ${host.address}:${host.port} did not start:\n${tail(host.logFile)}`);
    await sleep(50);
  }
}

const tail = (file: string) =>
  existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-15).join('\n') : '(no log)';

/**
 * `tmpfsBytes`: instead of a bind mount, the hosts get a tmpfs of that size as /srv (to fill their
 * disk); the test then sees it through /proc/<sshd pid>/root/srv, and a restart empties it.
 * `privateDirs`: paths the hosts see replaced by a local folder (bind-mounted in their mount
 * namespace only), e.g. an empty /var/lib/nginx for a host where nginx never ran, or /etc/sudoers.d
 * holding the test's own sudo rules; the rest of the machine never sees them.
 */
export async function startSshHosts(
  count: number,
  options: {
    loginShell?: string;
    tmpfsBytes?: number;
    privateDirs?: Record<string, string>;
    /** Also each user's own ~/.ssh/authorized_keys (as sshd's default), beside the fleet's shared file. */
    userAuthorizedKeys?: boolean;
  } = {},
): Promise<SshFleet> {
  const { uid, gid } = ensureDeployUser(options.loginShell ?? '/bin/sh');
  // Privilege separation needs /run/sshd; /srv must exist to be mounted over.
  mkdirSync('/run/sshd', { recursive: true });
  mkdirSync('/srv', { recursive: true });
  const dir = mkdtempSync(path.join(tmpdir(), 'slipway-sshd-'));
  // sshd reads authorized_keys as the logging-in user, who must be able to reach it.
  chmodSync(dir, 0o711);
  const clientKey = path.join(dir, 'client_key');
  keygen(clientKey);
  // Shared by the deploy user and root (PermitRootLogin prohibit-password).
  const authorizedKeys = path.join(dir, 'authorized_keys');
  writeFileSync(authorizedKeys, readFileSync(`${clientKey}.pub`), { mode: 0o644 });
  const knownHosts = path.join(dir, 'known_hosts');

  const hosts: TestHost[] = [];
  const running = new Map<TestHost, Instance>();
  // Namespaces of every sshd ever started here: sessions of a restarted sshd live on in the old one.
  const namespaceFds = new Map<number, number>();
  const probePorts = new Map<TestHost, Set<number>>();
  const logOffsets = new Map<TestHost, number>();

  const launch = async (host: TestHost) => {
    const log = openSync(host.logFile, 'a');
    const mount = options.tmpfsBytes
      ? `mount -t tmpfs -o size=${options.tmpfsBytes},uid=${uid},gid=${gid},mode=0755 slipway-test /srv`
      : 'mount --bind "$0" /srv';
    // Each private dir is a (source, target) pair of arguments after the config file: $2 $3, $4 $5, …
    const privateDirs = Object.entries(options.privateDirs ?? {});
    const binds = privateDirs.map((_, i) => ` && mount --bind "\${${2 * i + 2}}" "\${${2 * i + 3}}"`).join('');
    const args = [host.srvDir, host.configFile, ...privateDirs.flatMap(([target, source]) => [source, target])];
    // unshare (without --fork) and `exec` replace themselves, so the spawned PID ends up as sshd's.
    const child = spawn(
      'unshare',
      ['--mount', '--propagation', 'private', 'sh', '-c', `${mount}${binds} && exec ${SSHD} -D -e -f "$1"`, ...args],
      {
        stdio: ['ignore', log, log],
      },
    );
    closeSync(log);
    const instance: Instance = { child, exited: new Promise((resolve) => child.once('close', () => resolve())) };
    child.once('error', (e) => writeFileSync(host.logFile, `spawn failed: ${e.message}\n`, { flag: 'a' }));
    running.set(host, instance);
    host.pid = child.pid ?? -1;
    if (!probePorts.has(host)) probePorts.set(host, new Set());
    try {
      await waitForBanner(host, instance, probePorts.get(host)!);
    } catch (e) {
      child.kill('SIGKILL');
      await instance.exited;
      running.delete(host);
      throw e;
    }
    if (readlinkSync(`/proc/${host.pid}/exe`) !== SSHD) throw new Error(`PID ${host.pid} of ${host.name} is not sshd`);
    instance.namespaceFd = openSync(`/proc/${host.pid}/ns/mnt`, 'r');
    instance.namespace = fstatSync(instance.namespaceFd).ino;
    namespaceFds.set(instance.namespace, instance.namespaceFd);
    if (options.tmpfsBytes) host.srvDir = `/proc/${host.pid}/root/srv`;
  };

  /** SIGKILLs the host's processes, or all of the fleet's processes without a host. */
  const killNow = (host?: TestHost) => {
    const instances = host ? [running.get(host)].filter((i) => i !== undefined) : [...running.values()];
    const namespaces = new Set(host ? instances.flatMap((i) => i.namespace ?? []) : namespaceFds.keys());
    for (const instance of instances) instance.child.kill('SIGKILL');
    signal(processesIn(namespaces), 'SIGKILL');
    return namespaces;
  };

  /** Kills until nothing is left in those namespaces: a dying session may still be forking. */
  const finishKilling = async (namespaces: Set<number>) => {
    const deadline = Date.now() + 10_000;
    for (let pids = processesIn(namespaces); pids.length > 0; pids = processesIn(namespaces)) {
      if (Date.now() > deadline) throw new Error(`processes ${pids.join(' ')} of the ssh fleet do not die`);
      signal(pids, 'SIGKILL');
      await sleep(20);
    }
    for (const ns of namespaces) {
      const fd = namespaceFds.get(ns);
      // kill() and stop() may both finish the same host.
      if (fd === undefined) continue;
      namespaceFds.delete(ns);
      closeSync(fd);
    }
  };

  const stopListener = async (host: TestHost) => {
    const instance = running.get(host);
    if (!instance) return;
    instance.child.kill('SIGTERM');
    await instance.exited;
  };

  const restart = async (host: TestHost) => {
    await stopListener(host);
    await launch(host);
  };

  const writeKnownHosts = () =>
    writeFileSync(
      knownHosts,
      hosts.map((h) => `[${h.address}]:${h.port} ${readFileSync(`${h.hostKey}.pub`, 'utf8').trim()}\n`).join(''),
    );

  // A test runner that dies without calling stop() must not leave sshd listening.
  const onExit = () => killNow();
  process.once('exit', onExit);

  const startHost = async (i: number) => {
    const address = `127.0.0.${i + 1}`;
    const home = path.join(dir, `host${i}`);
    const srvDir = path.join(home, 'srv');
    mkdirSync(srvDir, { recursive: true });
    chownSync(srvDir, uid, gid);
    const hostKey = path.join(home, 'host_key');
    keygen(hostKey);
    const configFile = path.join(home, 'sshd_config');
    const host: TestHost = {
      name: `web${i}`,
      address,
      port: 0,
      user: DEPLOY_USER,
      srvDir,
      pid: 0,
      logFile: path.join(home, 'sshd.log'),
      configFile,
      hostKey,
    };
    // The free port can be taken by someone else before sshd binds it; then try another.
    for (let attempt = 1; ; attempt++) {
      host.port = await freePort(address);
      writeFileSync(
        configFile,
        sshdConfig(host, home, options.userAuthorizedKeys ? `${authorizedKeys} .ssh/authorized_keys` : authorizedKeys),
      );
      try {
        await launch(host);
        return host;
      } catch (e) {
        if (attempt === 3 || !/Address already in use/.test(tail(host.logFile))) throw e;
      }
    }
  };

  let stopping: Promise<void> | undefined;
  const fleet: SshFleet = {
    hosts,
    clientKey,
    knownHosts,
    configHost: (h, deployTo) => ({
      name: h.name,
      host: h.address,
      port: h.port,
      user: h.user,
      privateKey: clientKey,
      deployTo,
    }),
    dir,
    stop() {
      stopping ??= (async () => {
        process.removeListener('exit', onExit);
        const namespaces = killNow();
        await Promise.all([...running.values()].map((i) => i.exited));
        await finishKilling(namespaces);
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
    kill(host) {
      const instance = running.get(host);
      const namespaces = killNow(host);
      // Closes the namespace fd once the host is empty; restart() waits for the sshd to be gone.
      if (instance) instance.exited = instance.exited.then(() => finishKilling(namespaces));
    },
    restart,
    revive: restart,
    async regenerateHostKey(host) {
      await stopListener(host);
      rmSync(host.hostKey, { force: true });
      rmSync(`${host.hostKey}.pub`, { force: true });
      keygen(host.hostKey);
      await launch(host);
      // The fleet's own known_hosts follows; a test of a changed key keeps a copy made before.
      writeKnownHosts();
    },
    counts(host) {
      const text = existsSync(host.logFile)
        ? readFileSync(host.logFile)
            .subarray(logOffsets.get(host) ?? 0)
            .toString('utf8')
        : '';
      const count = (re: RegExp) => (text.match(re) ?? []).length;
      const probes = probePorts.get(host) ?? new Set();
      const connections = [...text.matchAll(/^Connection from (\S+) port (\d+) on /gm)].filter(
        ([, from, port]) => !(from === host.address && probes.has(Number(port))),
      ).length;
      return {
        connections,
        execRequests: count(/^debug1: server_input_channel_req: channel \d+ request exec /gm),
        subsystemRequests: count(/^debug1: server_input_channel_req: channel \d+ request subsystem /gm),
      };
    },
    resetCounts(host) {
      logOffsets.set(host, existsSync(host.logFile) ? statSync(host.logFile).size : 0);
    },
  };

  try {
    for (let i = 1; i <= count; i++) hosts.push(await startHost(i));
    writeKnownHosts();
  } catch (e) {
    await fleet.stop();
    throw e;
  }
  return fleet;
}

function sshdConfig(host: TestHost, home: string, authorizedKeys: string): string {
  return [
    `ListenAddress ${host.address}:${host.port}`,
    `HostKey ${host.hostKey}`,
    `PidFile ${path.join(home, 'sshd.pid')}`,
    `AuthorizedKeysFile ${authorizedKeys}`,
    // The temp dir is not root-owned all the way down, which StrictModes would refuse.
    'StrictModes no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    // DEBUG1 is the lowest level that logs each channel request (exec, subsystem) counted by counts().
    'LogLevel DEBUG1',
    'MaxSessions 10',
    'MaxStartups 100:30:200',
    'AcceptEnv none',
    'Subsystem sftp internal-sftp',
    '',
  ].join('\n');
}

export interface CuttingRelay {
  address: '127.0.0.1';
  port: number;
  /** Bytes that clients sent to the relay, over all connections (including any not forwarded). */
  bytesSent(): number;
  /** Changes the threshold for connections opened from now on. */
  setCut(bytes: number): void;
  stop(): Promise<void>;
}

/**
 * A TCP relay on loopback that forwards to `target`. Once a client has sent more than
 * `cutAfterBytes` on a connection, exactly `cutAfterBytes` reach the server and both sockets are
 * closed, like a network dying mid-upload. `Infinity` never cuts.
 */
export async function startCuttingRelay(
  target: { address: string; port: number },
  cutAfterBytes: number,
): Promise<CuttingRelay> {
  let sent = 0;
  let threshold = cutAfterBytes;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const limit = threshold;
    let forwarded = 0;
    let cutting = false;
    const upstream = net.connect(target.port, target.address);
    const cut = () => {
      client.destroy();
      // While cutting, upstream is closed once its last allowed bytes are out.
      if (!cutting) upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', cut).on('close', () => {
        sockets.delete(socket);
        cut();
      });
    }
    client.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      if (forwarded + chunk.length > limit) {
        cutting = true;
        client.destroy();
        // end() before destroy(), so the bytes up to the limit are delivered rather than dropped.
        upstream.end(chunk.subarray(0, limit - forwarded), () => upstream.destroy());
        return;
      }
      forwarded += chunk.length;
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!client.write(chunk)) {
        upstream.pause();
        client.once('drain', () => upstream.resume());
      }
    });
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  let stopping: Promise<void> | undefined;
  return {
    address: '127.0.0.1',
    port: (server.address() as net.AddressInfo).port,
    bytesSent: () => sent,
    setCut: (bytes) => {
      threshold = bytes;
    },
    stop: () =>
      (stopping ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      })),
  };
}

/** Relays in front of hosts, counting every byte that reaches each host's sshd (handshake, commands, stdin). */
export interface CountingRelays {
  /** Host entries for a deploy config that go through the relays. */
  configHosts(deployTo: string): ConfigHost[];
  /** The fleet's known_hosts, plus each host's key under its relay's address. */
  knownHosts: string;
  /** Bytes that reached host i's sshd so far. */
  bytes(i: number): number;
  stop(): Promise<void>;
}

/**
 * sshd logs its byte count ("Transferred:") only when it ends a connection itself, never when the client
 * disconnects, so the bytes a host receives are counted by a relay on the way into it.
 */
export async function startCountingRelays(fleet: SshFleet): Promise<CountingRelays> {
  const relays = await Promise.all(fleet.hosts.map((h) => startCuttingRelay(h, Infinity)));
  const knownHosts = path.join(fleet.dir, `known_hosts_relays_${relays.map((r) => r.port).join('_')}`);
  writeFileSync(
    knownHosts,
    readFileSync(fleet.knownHosts, 'utf8') +
      fleet.hosts
        .map((h, i) => `[${relays[i].address}]:${relays[i].port} ${readFileSync(`${h.hostKey}.pub`, 'utf8').trim()}\n`)
        .join(''),
  );
  return {
    configHosts: (deployTo) =>
      fleet.hosts.map((h, i) => ({ ...fleet.configHost(h, deployTo), host: relays[i].address, port: relays[i].port })),
    knownHosts,
    bytes: (i) => relays[i].bytesSent(),
    stop: async () => {
      await Promise.all(relays.map((r) => r.stop()));
    },
  };
}

/**
 * Drops every connection the host serves now, from the host's side: SIGKILLs the per-connection sshd processes
 * (the children of its listening sshd, found by parent PID) and whatever runs under them. The client sees its
 * connection closed, as when a network drops it; the listening sshd stays up. Returns the PIDs killed.
 */
export function dropConnections(host: TestHost): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 4 of /proc/<pid>/stat, after the command name in parentheses (which may hold spaces).
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // Gone meanwhile.
    }
  }
  const killed: number[] = [];
  for (let next = [...(parents.get(host.pid) ?? [])]; next.length; ) {
    const pid = next.shift()!;
    killed.push(pid);
    next.push(...(parents.get(pid) ?? []));
  }
  signal(killed, 'SIGKILL');
  return killed;
}
