// The sshd harness itself, checked with the real OpenSSH client: logins, private /srv per host,
// sshd log counts, changed host keys, killed hosts, the cutting relay, and a clean stop.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SshFleet, startCuttingRelay, startSshHosts, type TestHost } from '../helpers/sshd.js';

const TIMEOUT = 60_000;
let fleet: SshFleet;
beforeAll(async () => {
  fleet = await startSshHosts(2, { loginShell: '/bin/sh' });
}, TIMEOUT);
afterAll(() => fleet?.stop(), TIMEOUT);

interface SshOptions {
  knownHosts?: string;
  user?: string;
  port?: number;
  address?: string;
  extra?: string[];
  input?: string | Buffer;
}

function sshArgs(h: TestHost, command: string, o: SshOptions = {}): string[] {
  return [
    '-F',
    '/dev/null',
    '-i',
    fleet.clientKey,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `UserKnownHostsFile=${o.knownHosts ?? fleet.knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=10',
    ...(o.extra ?? []),
    '-p',
    String(o.port ?? h.port),
    `${o.user ?? h.user}@${o.address ?? h.address}`,
    command,
  ];
}

/** Asynchronous: the cutting relay runs in this process and must keep serving meanwhile. */
function ssh(
  h: TestHost,
  command: string,
  o: SshOptions = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', sshArgs(h, command, o), { timeout: 30_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject).on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.on('error', () => {}).end(o.input);
  });
}

const alive = (pid: number) => {
  try {
    // A zombie still answers signal 0; its state in /proc says it is dead.
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

async function until(condition: () => boolean, what: string, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const refusesTcp = (h: TestHost) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(h.port, h.address);
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });

describe('sshd harness', () => {
  it(
    'starts hosts on their own loopback addresses with sshd as the recorded PID',
    () => {
      expect(fleet.hosts.map((h) => [h.name, h.address, h.user])).toEqual([
        ['web1', '127.0.0.2', 'slipway'],
        ['web2', '127.0.0.3', 'slipway'],
      ]);
      for (const h of fleet.hosts) {
        expect(readlinkSync(`/proc/${h.pid}/exe`)).toBe('/usr/sbin/sshd');
        // sshd rewrites its argv into a process title, which still names the config.
        expect(readFileSync(`/proc/${h.pid}/cmdline`, 'utf8')).toContain(`-f ${h.configFile}`);
        expect(readFileSync(fleet.knownHosts, 'utf8')).toMatch(
          new RegExp(`^\\[${h.address.replaceAll('.', '\\.')}\\]:${h.port} ssh-ed25519 AAAA\\S+$`, 'm'),
        );
      }
      // The harness's own readiness probe is not a connection.
      expect(fleet.counts(fleet.hosts[1])).toEqual({ connections: 0, execRequests: 0, subsystemRequests: 0 });
    },
    TIMEOUT,
  );

  it(
    'logs in as slipway with a verified host key and /bin/sh (dash) as login shell; each host has its own /srv',
    async () => {
      const [web1, web2] = fleet.hosts;
      const r = await ssh(web1, 'echo $0; readlink /proc/$$/exe; id -un; touch /srv/marker');
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.split('\n').slice(0, 3)).toEqual(['sh', '/usr/bin/dash', 'slipway']);
      expect(existsSync(path.join(web1.srvDir, 'marker'))).toBe(true);
      expect(statSync(path.join(web1.srvDir, 'marker')).uid).toBe(statSync(web1.srvDir).uid);
      expect(existsSync(path.join(web2.srvDir, 'marker'))).toBe(false);
      expect(existsSync('/srv/marker')).toBe(false);

      expect((await ssh(web2, 'mkdir -p /srv/app/releases && echo hi > /srv/app/releases/x')).status).toBe(0);
      expect(readFileSync(path.join(web2.srvDir, 'app/releases/x'), 'utf8')).toBe('hi\n');
      expect(existsSync(path.join(web1.srvDir, 'app'))).toBe(false);

      const root = await ssh(web1, 'id -u; ls /srv', { user: 'root' });
      expect(root.status, root.stderr).toBe(0);
      expect(root.stdout).toBe('0\nmarker\n');
    },
    TIMEOUT,
  );

  it(
    'counts connections, exec and subsystem requests from the sshd log',
    async () => {
      const web1 = fleet.hosts[0];
      fleet.resetCounts(web1);
      expect(fleet.counts(web1)).toEqual({ connections: 0, execRequests: 0, subsystemRequests: 0 });
      expect((await ssh(web1, 'true')).status).toBe(0);
      expect((await ssh(web1, 'true')).status).toBe(0);
      expect(fleet.counts(web1)).toEqual({ connections: 2, execRequests: 2, subsystemRequests: 0 });

      // Two exec channels on one connection, then an sftp session.
      const shared = [
        '-o',
        'ControlMaster=auto',
        '-o',
        `ControlPath=${path.join(fleet.dir, 'cm-%C')}`,
        '-o',
        'ControlPersist=5',
      ];
      expect((await ssh(web1, 'true', { extra: shared })).status).toBe(0);
      expect((await ssh(web1, 'true', { extra: shared })).status).toBe(0);
      spawnSync('ssh', [
        '-F',
        '/dev/null',
        '-o',
        `ControlPath=${path.join(fleet.dir, 'cm-%C')}`,
        '-p',
        String(web1.port),
        '-O',
        'exit',
        `slipway@${web1.address}`,
      ]);
      const sftp = spawnSync(
        'sftp',
        [
          '-F',
          '/dev/null',
          '-i',
          fleet.clientKey,
          '-o',
          `UserKnownHostsFile=${fleet.knownHosts}`,
          '-o',
          'StrictHostKeyChecking=yes',
          '-b',
          '-',
          '-P',
          String(web1.port),
          `slipway@${web1.address}`,
        ],
        { input: 'ls /srv\n', encoding: 'utf8' },
      );
      expect(sftp.status, sftp.stderr).toBe(0);
      expect(fleet.counts(web1)).toEqual({ connections: 4, execRequests: 4, subsystemRequests: 1 });
    },
    TIMEOUT,
  );

  it(
    'regenerateHostKey: the old known_hosts is refused under StrictHostKeyChecking=yes, the fleet one follows',
    async () => {
      const web2 = fleet.hosts[1];
      const before = path.join(fleet.dir, 'known_hosts.before');
      copyFileSync(fleet.knownHosts, before);
      const { port, pid } = web2;
      await fleet.regenerateHostKey(web2);
      expect(web2.port).toBe(port);
      expect(web2.pid).not.toBe(pid);
      expect(alive(pid)).toBe(false);
      const refused = await ssh(web2, 'true', { knownHosts: before });
      expect(refused.status).toBe(255);
      expect(refused.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
      expect((await ssh(web2, 'true')).status).toBe(0);
      // Files survive the restart: /srv is the same folder.
      expect((await ssh(web2, 'cat /srv/app/releases/x')).stdout).toBe('hi\n');
    },
    TIMEOUT,
  );

  it(
    'kill() stops the host at once, open sessions included; restart() brings it back',
    async () => {
      const web2 = fleet.hosts[1];
      const session = spawn('ssh', sshArgs(web2, 'echo started; sleep 30'), { stdio: ['ignore', 'pipe', 'pipe'] });
      const ended = new Promise<number | null>((resolve) => session.on('close', resolve));
      await new Promise((resolve) => session.stdout.once('data', resolve));
      const { pid } = web2;
      const killedAt = Date.now();
      fleet.kill(web2);
      await until(() => !alive(pid), 'sshd to die');
      expect(await refusesTcp(web2)).toBe(true);
      expect(await ended).toBe(255);
      expect(Date.now() - killedAt).toBeLessThan(10_000);
      expect((await ssh(web2, 'true', { extra: ['-o', 'ConnectTimeout=3'] })).status).toBe(255);

      await fleet.restart(web2);
      expect(web2.pid).not.toBe(pid);
      expect((await ssh(web2, 'cat /srv/app/releases/x')).stdout).toBe('hi\n');
    },
    TIMEOUT,
  );

  it(
    'the relay forwards a connection whole, and cuts one after exactly N bytes',
    async () => {
      const web1 = fleet.hosts[0];
      const through = await startCuttingRelay(web1, Infinity);
      try {
        const alias = ['-o', `HostKeyAlias=[${web1.address}]:${web1.port}`];
        const r = await ssh(web1, 'wc -c', {
          address: through.address,
          port: through.port,
          extra: alias,
          input: Buffer.alloc(1 << 20),
        });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout.trim()).toBe(String(1 << 20));
        expect(through.bytesSent()).toBeGreaterThan(1 << 20);
      } finally {
        await through.stop();
      }

      // A plain server counting what it gets: exactly N bytes, then the client sees the close.
      let received = 0;
      let serverSideClosed!: () => void;
      const serverClosed = new Promise<void>((resolve) => (serverSideClosed = resolve));
      const server = net.createServer((s) => {
        s.on('data', (d) => (received += d.length));
        s.on('close', () => serverSideClosed());
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const cutting = await startCuttingRelay(
        { address: '127.0.0.1', port: (server.address() as net.AddressInfo).port },
        1000,
      );
      try {
        const client = net.connect(cutting.port, cutting.address);
        const clientClosed = new Promise<void>((resolve) => client.on('close', () => resolve()).on('error', () => {}));
        client.write(Buffer.alloc(600));
        await new Promise((r) => setTimeout(r, 100));
        client.write(Buffer.alloc(10_000));
        await clientClosed;
        await serverClosed;
        expect(received).toBe(1000);
        expect(cutting.bytesSent()).toBe(10_600);

        // Over SSH: an upload cut in the middle fails the client.
        const sshCut = await startCuttingRelay(web1, 20_000);
        try {
          const alias = ['-o', `HostKeyAlias=[${web1.address}]:${web1.port}`];
          const r = await ssh(web1, 'cat > /srv/upload', {
            address: sshCut.address,
            port: sshCut.port,
            extra: alias,
            input: Buffer.alloc(1 << 20),
          });
          expect(r.status).toBe(255);
          expect(sshCut.bytesSent()).toBeGreaterThan(20_000);
          const upload = path.join(web1.srvDir, 'upload');
          expect(existsSync(upload) ? statSync(upload).size : 0).toBeLessThan(20_000);
        } finally {
          await sshCut.stop();
        }
      } finally {
        await cutting.stop();
        server.close();
      }
    },
    TIMEOUT,
  );

  it(
    'stop() ends every sshd by PID, is safe to call twice, and removes the temp dir',
    async () => {
      const pids = fleet.hosts.map((h) => h.pid);
      expect(pids.every(alive)).toBe(true);
      // A session left open must not outlive the fleet.
      fleet.resetCounts(fleet.hosts[0]);
      const session = spawn('ssh', sshArgs(fleet.hosts[0], 'sleep 30'), { stdio: 'ignore' });
      const ended = new Promise((resolve) => session.on('close', resolve));
      await until(() => fleet.counts(fleet.hosts[0]).execRequests > 0, 'the session to start');
      await Promise.all([fleet.stop(), fleet.stop()]);
      await fleet.stop();
      expect(pids.filter(alive)).toEqual([]);
      await ended;
      const leftovers = readdirSync('/proc').filter((p) => {
        try {
          return /^\d+$/.test(p) && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(fleet.dir);
        } catch {
          return false;
        }
      });
      expect(leftovers).toEqual([]);
      expect(existsSync(fleet.dir)).toBe(false);
    },
    TIMEOUT,
  );
});
