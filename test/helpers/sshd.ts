// Real OpenSSH hosts for end-to-end tests: N sshd servers on 127.0.0.2, .3, … each on a free port,
// with its own host key and its own mount namespace in which a private folder is bind-mounted on
// /srv, so every fake host has its own filesystem. All are stopped by PID.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const DEPLOY_USER = 'slipway';

export interface TestHost {
  name: string;
  address: string;
  port: number;
  user: string;
  /** The folder that this host sees as /srv. */
  srvDir: string;
  pid: number;
  logFile: string;
  configFile: string;
  hostKey: string;
}

export interface SshFleet {
  hosts: TestHost[];
  clientKey: string;
  knownHosts: string;
  dir: string;
  stop(): Promise<void>;
  kill(host: TestHost): void;
  /** Starts a killed host's sshd again, same address, port and key. */
  revive(host: TestHost): Promise<void>;
  regenerateHostKey(host: TestHost): Promise<void>;
  counts(host: TestHost): { connections: number; execRequests: number; subsystemRequests: number };
  resetCounts(host: TestHost): void;
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

async function waitForBanner(address: string, port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, address);
      socket.once('data', (d) => {
        socket.destroy();
        resolve(d.toString().startsWith('SSH-'));
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd on ${address}:${port} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function ensureDeployUser(shell: string): { uid: number; gid: number } {
  try {
    execFileSync('id', ['-u', DEPLOY_USER], { stdio: 'ignore' });
    execFileSync('usermod', ['-s', shell, DEPLOY_USER]);
  } catch {
    execFileSync('useradd', ['--create-home', '--shell', shell, DEPLOY_USER]);
  }
  // useradd leaves the password "!" (locked), and sshd without PAM refuses locked accounts even for keys.
  execFileSync('usermod', ['-p', '*', DEPLOY_USER]);
  const uid = Number(execFileSync('id', ['-u', DEPLOY_USER], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', DEPLOY_USER], { encoding: 'utf8' }));
  return { uid, gid };
}

const keygen = (file: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', file]);

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * `tmpfsBytes`: instead of a bind mount, the hosts get a tmpfs of that size as /srv (to fill their
 * disk); the test then sees it through /proc/<sshd pid>/root/srv.
 */
export async function startSshHosts(count: number, options: { loginShell?: string; tmpfsBytes?: number } = {}): Promise<SshFleet> {
  const { uid, gid } = ensureDeployUser(options.loginShell ?? '/bin/sh');
  mkdirSync('/run/sshd', { recursive: true });
  mkdirSync('/srv', { recursive: true });
  const dir = mkdtempSync(path.join(tmpdir(), 'slipway-sshd-'));
  const clientKey = path.join(dir, 'client_key');
  keygen(clientKey);
  const authorized = path.join(dir, 'authorized_keys');
  writeFileSync(authorized, readFileSync(`${clientKey}.pub`), { mode: 0o644 });
  // sshd reads authorized_keys as the deploy user: it must be able to reach it.
  chmodSync(dir, 0o711);
  const processes = new Map<TestHost, ChildProcess>();
  const offsets = new Map<TestHost, number>();

  const launch = async (host: TestHost) => {
    const log = openSync(host.logFile, 'a');
    // `unshare` and `sh` exec into sshd, so the spawned pid is sshd's own.
    const mount = options.tmpfsBytes
      ? `mount -t tmpfs -o size=${options.tmpfsBytes},uid=${uid},gid=${gid},mode=0755 slipway-test /srv`
      : 'mount --bind "$0" /srv';
    const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `${mount} && exec /usr/sbin/sshd -D -e -f "$1"`, host.srvDir, host.configFile], {
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    processes.set(host, child);
    host.pid = child.pid!;
    if (options.tmpfsBytes) host.srvDir = `/proc/${host.pid}/root/srv`;
    await waitForBanner(host.address, host.port);
  };

  const hosts: TestHost[] = [];
  for (let i = 1; i <= count; i++) {
    const address = `127.0.0.${i + 1}`;
    const home = path.join(dir, `host${i}`);
    const srvDir = path.join(home, 'srv');
    mkdirSync(srvDir, { recursive: true });
    chownSync(srvDir, uid, gid);
    const hostKey = path.join(home, 'host_key');
    keygen(hostKey);
    const port = await freePort(address);
    const configFile = path.join(home, 'sshd_config');
    writeFileSync(
      configFile,
      [
        `ListenAddress ${address}:${port}`,
        `HostKey ${hostKey}`,
        `PidFile ${path.join(home, 'sshd.pid')}`,
        `AuthorizedKeysFile ${authorized}`,
        'StrictModes no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'PermitRootLogin prohibit-password',
        'LogLevel DEBUG1',
        'MaxSessions 10',
        'MaxStartups 100:30:200',
        'Subsystem sftp internal-sftp',
        '',
      ].join('\n'),
    );
    const host: TestHost = { name: `web${i}`, address, port, user: DEPLOY_USER, srvDir, pid: 0, logFile: path.join(home, 'sshd.log'), configFile, hostKey };
    await launch(host);
    hosts.push(host);
  }
  const knownHosts = path.join(dir, 'known_hosts');
  const writeKnownHosts = () =>
    writeFileSync(knownHosts, hosts.map((h) => `[${h.address}]:${h.port} ${readFileSync(`${h.hostKey}.pub`, 'utf8').trim()}\n`).join(''));
  writeKnownHosts();

  const logText = (host: TestHost) => (existsSync(host.logFile) ? readFileSync(host.logFile, 'utf8').slice(offsets.get(host) ?? 0) : '');
  let stopped = false;
  const fleet: SshFleet = {
    hosts,
    clientKey,
    knownHosts,
    dir,
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const child of processes.values()) child.kill('SIGTERM');
      await Promise.all([...processes.values()].map(exited));
      rmSync(dir, { recursive: true, force: true });
    },
    kill(host) {
      // The per-connection sshd processes too: killing only the listener would leave sessions open.
      spawnSync('pkill', ['-KILL', '-P', String(host.pid)]);
      processes.get(host)?.kill('SIGKILL');
    },
    revive: (host) => launch(host),
    async regenerateHostKey(host) {
      const child = processes.get(host)!;
      child.kill('SIGTERM');
      await exited(child);
      rmSync(host.hostKey);
      rmSync(`${host.hostKey}.pub`);
      keygen(host.hostKey);
      await launch(host);
      // The fleet's own known_hosts follows; tests of a changed key keep their own copy.
      writeKnownHosts();
    },
    counts(host) {
      const text = logText(host);
      const count = (re: RegExp) => (text.match(re) ?? []).length;
      return {
        connections: count(/^Connection from /gm),
        execRequests: count(/server_input_channel_req: channel \d+ request exec /g),
        subsystemRequests: count(/server_input_channel_req: channel \d+ request subsystem /g),
      };
    },
    resetCounts(host) {
      offsets.set(host, existsSync(host.logFile) ? statSync(host.logFile).size : 0);
    },
  };
  return fleet;
}

/**
 * A TCP relay on loopback that forwards to `target` and cuts both sides of a connection once more
 * than `cutAfterBytes` went client→server on it. `setCut` changes the threshold for new connections.
 */
export async function startCuttingRelay(target: { address: string; port: number }, cutAfterBytes: number) {
  let sent = 0;
  let threshold = cutAfterBytes;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.address);
    sockets.add(client).add(upstream);
    const limit = threshold;
    let mine = 0;
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (d) => {
      sent += d.length;
      mine += d.length;
      if (mine > limit) return cut();
      upstream.write(d);
    });
    upstream.on('data', (d) => client.write(d));
    client.on('error', cut).on('close', cut);
    upstream.on('error', cut).on('close', cut);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    address: '127.0.0.1' as const,
    port,
    bytesSent: () => sent,
    setCut: (bytes: number) => (threshold = bytes),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
