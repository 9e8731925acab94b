// A real nginx and a real supervisord for end-to-end tests. Each stack lives in its own temp dir with
// its own configs, so it never touches /etc/nginx, /etc/supervisor or the package's default daemons:
// nginx listens on 127.0.0.1 only, supervisord only on a unix socket (no inet_http_server). Both are
// stopped by PID, together with anything the supervised programs left behind.
import { execFile, execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import type { Project } from './project.js';
import { deployUserIds } from './sshd.js';

const NGINX = '/usr/sbin/nginx';
const SUPERVISORD = '/usr/bin/supervisord';
const SUPERVISORCTL = '/usr/bin/supervisorctl';

export interface ServiceStack {
  /** Temp dir holding configs, sockets, pid files and logs of both daemons. */
  dir: string;
  /** nginx listens on 127.0.0.1:nginxPort; a site uses `listen 127.0.0.1:<nginxPort>; server_name localhost;`. */
  nginxPort: number;
  /** A free port for the app supervisor runs; nothing of the harness listens on it. */
  appPort: number;
  sitesAvailable: string;
  /** `*.conf` in here is included by the main nginx config. */
  sitesEnabled: string;
  /** `*.conf` in here is included by supervisord.conf. */
  supervisorConfD: string;
  /** Shell command validating the whole nginx config (main config + enabled sites). */
  nginxTest: string;
  /** Shell command reloading this nginx (it parses the config first and does not signal when that fails). */
  nginxReload: string;
  /** Shell command prefix for this supervisord, e.g. `${supervisorctl} reread`. */
  supervisorctl: string;
  /**
   * The `services` section of a slipway config managing this stack with a program and site named
   * `hello` (test/e2e/services.test.ts deploys through it).
   */
  services: Record<string, unknown>;
  nginxPid(): number;
  supervisordPid(): number;
  /** GET http://127.0.0.1:<nginxPort><path> with `Host: localhost`; status 0 and the error text when it fails. */
  get(path: string): Promise<{ status: number; body: string }>;
  /**
   * nginx reloads asynchronously: GETs / until the body contains `expected` (or gives up after ~5 s), returning
   * the last body.
   */
  answer(expected: string): Promise<string>;
  /** The config keys that make a deploy serve the sample app through this stack, health-checked. */
  deployConfig(): Record<string, unknown>;
  /** Stops supervisord, its programs and their leftovers, then nginx; waits for them to be gone; removes dir. */
  stop(): Promise<void>;
  /** Stops supervisord alone (and its programs), as a host whose supervisor died. */
  stopSupervisord(): Promise<void>;
}

export interface ServiceStackOptions {
  /**
   * Run both daemons as this user and give it the dir, so that it (e.g. the deploy user over ssh)
   * can install sites and programs, test and reload nginx and use supervisorctl without sudo.
   * Default: whoever runs the tests (root here), nginx workers then run as nobody.
   * With a user, run nginxTest as that user too: `nginx -t` as root chowns nginx's temp dirs to
   * nobody (a `user` directive would avoid that, at the price of a warning on every test and reload).
   */
  user?: string;
  /**
   * Start both daemons inside this process's mount namespace (an sshd test host's pid): they then see
   * that host's /srv and private dirs (its /etc, for the users a test creates there) as its sessions do.
   */
  mountNamespaceOf?: number;
}

/** Quotes for sh only when needed, so the commands stay readable in logs and assertions. */
const q = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Both ports are held open together so that the two can never be the same. */
async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => (s.listening ? s.close(r) : r(undefined)))));
  }
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], ids?: { uid: number; gid: number }): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 10_000, ...ids }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (error && code === -1 ? error.message : '') });
    });
  });
}

interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
  /** With the pid, identifies a process even if the pid gets reused. */
  start: string;
}

function procInfo(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields are counted after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, state: f[0], ppid: Number(f[1]), pgid: Number(f[2]), start: f[19] };
  } catch {
    return undefined;
  }
}

function allProcs(): ProcInfo[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => procInfo(Number(d)))
    .filter((p): p is ProcInfo => p !== undefined);
}

function descendants(root: number, procs = allProcs()): ProcInfo[] {
  const found: ProcInfo[] = [];
  const parents = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of procs) {
      if (parents.has(p.ppid) && !parents.has(p.pid)) {
        parents.add(p.pid);
        found.push(p);
        grew = true;
      }
    }
  }
  return found;
}

/** process.kill(pid, 0) says yes to a zombie; a dead daemon stays one until init gets round to reaping it. */
function running(pid: number, start?: string): boolean {
  const p = procInfo(pid);
  return p !== undefined && p.state !== 'Z' && (start === undefined || p.start === start);
}

function exists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    if (pid > 1) process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
}

function readPid(file: string): number {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : 0;
  } catch {
    return 0;
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

function chownTree(target: string, uid: number, gid: number): void {
  chownSync(target, uid, gid);
  if (lstatSync(target).isDirectory())
    for (const entry of readdirSync(target)) chownTree(path.join(target, entry), uid, gid);
}

function tail(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-20).join('\n') : '';
}

export async function startServiceStack(opts: ServiceStackOptions = {}): Promise<ServiceStack> {
  const ids = opts.user
    ? {
        uid: Number(execFileSync('id', ['-u', opts.user], { encoding: 'utf8' })),
        gid: Number(execFileSync('id', ['-g', opts.user], { encoding: 'utf8' })),
      }
    : undefined;

  const inNamespace = (file: string, args: string[]): [string, string[]] =>
    opts.mountNamespaceOf
      ? ['nsenter', [`--mount=/proc/${opts.mountNamespaceOf}/ns/mnt`, '--', file, ...args]]
      : [file, args];
  const dir = mkdtempSync(path.join(tmpdir(), 'slipway-services-'));
  // nginx workers run as nobody when the master is root; they must be able to reach their temp dirs.
  chmodSync(dir, 0o711);
  const nginxDir = path.join(dir, 'nginx');
  const supervisorDir = path.join(dir, 'supervisor');
  const sitesAvailable = path.join(nginxDir, 'sites-available');
  const sitesEnabled = path.join(nginxDir, 'sites-enabled');
  const supervisorConfD = path.join(supervisorDir, 'conf.d');
  for (const d of [sitesAvailable, sitesEnabled, path.join(nginxDir, 'tmp'), supervisorConfD])
    mkdirSync(d, { recursive: true });

  const nginxConf = path.join(nginxDir, 'nginx.conf');
  const nginxErrorLog = path.join(nginxDir, 'error.log');
  const nginxPidFile = path.join(nginxDir, 'nginx.pid');
  const nginxArgs = ['-p', `${nginxDir}/`, '-c', nginxConf];
  const nginxTest = [NGINX, '-t', '-q', ...nginxArgs].map(q).join(' ');
  const nginxReload = [NGINX, '-s', 'reload', ...nginxArgs].map(q).join(' ');

  const supervisorConf = path.join(supervisorDir, 'supervisord.conf');
  const supervisorPidFile = path.join(supervisorDir, 'supervisord.pid');
  const supervisorLog = path.join(supervisorDir, 'supervisord.log');
  const socket = path.join(supervisorDir, 'supervisor.sock');
  writeFileSync(
    supervisorConf,
    `[unix_http_server]
file=${socket}
chmod=0700

[supervisord]
pidfile=${supervisorPidFile}
logfile=${supervisorLog}
childlogdir=${supervisorDir}
nodaemon=false

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://${socket}

[include]
files = ${supervisorConfD}/*.conf
`,
  );
  const supervisorctl = [SUPERVISORCTL, '-c', supervisorConf].map(q).join(' ');

  let nginxPort = 0;
  let appPort = 0;
  let nginxPid = 0;
  let supervisordPid = 0;
  let stopping: Promise<void> | undefined;

  async function stopSupervisor(): Promise<void> {
    const pid = supervisordPid || readPid(supervisorPidFile);
    if (!pid) return;
    // supervisord stops only the processes it started: whatever those forked (a shell's background
    // job, a worker) survives in the program's process group, so note the groups before it goes.
    const tree = descendants(pid);
    const groups = new Set(tree.map((p) => p.pgid).filter((g) => g !== pid));
    signal(pid, 'SIGTERM');
    // Programs get stopwaitsecs (10 s by default) before supervisord kills them.
    if (!(await until(() => !running(pid), 15_000))) signal(pid, 'SIGKILL');
    await until(() => !running(pid), 5_000);
    const leftovers = () =>
      allProcs().filter(
        (p) => p.state !== 'Z' && (groups.has(p.pgid) || tree.some((t) => t.pid === p.pid && t.start === p.start)),
      );
    for (const p of leftovers()) signal(p.pid, 'SIGKILL');
    if (!(await until(() => leftovers().length === 0, 5_000))) {
      throw new Error(
        `supervised processes still running: ${leftovers()
          .map((p) => p.pid)
          .join(' ')}`,
      );
    }
    for (const p of tree) await until(() => !exists(p.pid) || procInfo(p.pid)?.start !== p.start, 5_000);
    await until(() => !exists(pid), 10_000);
  }

  async function stopNginx(): Promise<void> {
    const pid = nginxPid || readPid(nginxPidFile);
    if (!pid) return;
    // Workers, including old ones still finishing after a reload: if the master has to be killed
    // they would be orphaned and keep the port.
    const workers = descendants(pid);
    // TERM is nginx's fast shutdown: QUIT would wait for open keep-alive connections.
    signal(pid, 'SIGTERM');
    if (!(await until(() => !running(pid), 5_000))) {
      signal(pid, 'SIGKILL');
      for (const w of workers) if (running(w.pid, w.start)) signal(w.pid, 'SIGKILL');
    }
    const gone = await until(() => !running(pid) && workers.every((w) => !running(w.pid, w.start)), 5_000);
    if (!gone) throw new Error(`nginx (master ${pid}) still running`);
    await until(() => !exists(pid), 10_000);
  }

  async function stop(): Promise<void> {
    stopping ??= (async () => {
      // Together: most of the time goes to waiting for init to reap each daemonized process.
      const results = await Promise.allSettled([stopSupervisor(), stopNginx()]);
      rmSync(dir, { recursive: true, force: true });
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    })();
    return stopping;
  }

  try {
    // A port found free can be taken before nginx binds it: then try again with new ones.
    for (let attempt = 1; ; attempt++) {
      [nginxPort, appPort] = await freePorts(2);
      writeFileSync(
        nginxConf,
        `pid ${nginxPidFile};
error_log ${nginxErrorLog};
daemon on;
worker_processes 1;
events {}
http {
  access_log off;
  client_body_temp_path ${nginxDir}/tmp/client_body;
  proxy_temp_path ${nginxDir}/tmp/proxy;
  fastcgi_temp_path ${nginxDir}/tmp/fastcgi;
  uwsgi_temp_path ${nginxDir}/tmp/uwsgi;
  scgi_temp_path ${nginxDir}/tmp/scgi;
  include ${sitesEnabled}/*.conf;
  # Sites listen on this address too, with a server_name: this one only answers other hosts.
  server { listen 127.0.0.1:${nginxPort} default_server; return 503 "no site\\n"; }
}
`,
      );
      if (ids) chownTree(dir, ids.uid, ids.gid);
      const started = await run(...inNamespace(NGINX, nginxArgs), ids);
      if (started.code === 0) break;
      if (attempt < 3 && /Address already in use/.test(started.stderr)) continue;
      throw new Error(`nginx did not start (exit ${started.code}): ${started.stderr}`);
    }
    // The daemonized master writes its pid file after the starting process has already exited.
    if (!(await until(() => readPid(nginxPidFile) > 0 && running(readPid(nginxPidFile)), 10_000))) {
      throw new Error(`nginx wrote no pid file: ${tail(nginxErrorLog)}`);
    }
    nginxPid = readPid(nginxPidFile);
    if (!(await until(() => canConnect(nginxPort), 10_000)))
      throw new Error(`nginx does not answer on 127.0.0.1:${nginxPort}: ${tail(nginxErrorLog)}`);

    const started = await run(...inNamespace(SUPERVISORD, ['-c', supervisorConf]), ids);
    if (started.code !== 0)
      throw new Error(`supervisord did not start (exit ${started.code}): ${started.stderr}${started.stdout}`);
    // With no programs `status` prints nothing and exits 0; 3 means some program is not running
    // (none yet, but harmless); 4 is "cannot reach supervisord", while it is still starting.
    const ready = await until(
      async () => [0, 3].includes((await run(SUPERVISORCTL, ['-c', supervisorConf, 'status'])).code),
      10_000,
    );
    if (!ready) throw new Error(`supervisord does not answer on ${socket}: ${tail(supervisorLog)}`);
    // It serves the socket only after writing the pid file, but the file may be read mid-write.
    await until(() => readPid(supervisorPidFile) > 0 && running(readPid(supervisorPidFile)), 5_000);
    supervisordPid = readPid(supervisorPidFile);
    if (!supervisordPid) throw new Error(`supervisord wrote no pid file: ${tail(supervisorLog)}`);
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }

  const get = (urlPath: string) =>
    new Promise<{ status: number; body: string }>((resolve) => {
      // No keep-alive agent: an idle pooled connection would hold a worker open across reloads and stop().
      const req = http.get(
        {
          host: '127.0.0.1',
          port: nginxPort,
          path: urlPath,
          headers: { host: 'localhost' },
          agent: false,
          timeout: 3000,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          res.on('error', (error) => resolve({ status: 0, body: error.message }));
        },
      );
      req.on('error', (error) => resolve({ status: 0, body: error.message }));
      req.on('timeout', () => req.destroy(new Error(`no answer from 127.0.0.1:${nginxPort} within 3 s`)));
    });

  const services = {
    nginx: {
      site: path.join(sitesAvailable, 'hello.conf'),
      enabled: path.join(sitesEnabled, 'hello.conf'),
      test: nginxTest,
      reload: nginxReload,
    },
    supervisor: { program: path.join(supervisorConfD, 'hello.conf'), ctl: supervisorctl },
  };
  return {
    dir,
    nginxPort,
    appPort,
    sitesAvailable,
    sitesEnabled,
    supervisorConfD,
    nginxTest,
    nginxReload,
    supervisorctl,
    services,
    nginxPid: () => {
      // A pid file that moved on (binary upgrade) is the truth; a missing one (stopped) is not.
      const current = readPid(nginxPidFile);
      if (current && !stopping) nginxPid = current;
      return nginxPid;
    },
    supervisordPid: () => supervisordPid,
    get,
    answer: async (expected: string) => {
      let last = '';
      for (let i = 0; i < 50; i++) {
        last = (await get('/')).body;
        if (last.includes(expected)) return last;
        await sleep(100);
      }
      return last;
    },
    deployConfig: () => ({
      port: appPort,
      vars: { listen: `127.0.0.1:${nginxPort}` },
      services,
      healthcheck: {
        url: `http://127.0.0.1:${appPort}/health`,
        expectStatus: 200,
        expectBody: '{{releaseId}}',
        timeoutSeconds: 8,
      },
    }),
    stop,
    stopSupervisord: async () => {
      await stopSupervisor();
      supervisordPid = 0;
    },
  };
}

/**
 * Deploys with an nginx site that is valid on its own but that nginx rejects (the main config already has a
 * default server on its address), and checks the refusal both ways of installing configs must give.
 */
export async function deployRejectedSite(project: Project): Promise<void> {
  const template = path.join(project.dir, 'templates/nginx.conf.hbs');
  const original = readFileSync(template, 'utf8');
  writeFileSync(
    template,
    original.replace('listen {{#if listen}}{{listen}}{{else}}80{{/if}};', 'listen {{listen}} default_server;'),
  );
  const result = await project.run(['deploy']);
  writeFileSync(template, original);
  expect(result.code).toBe(1);
  expect(result.stderr).toContain('nginx rejected the new site (previous files put back)');
  expect(result.stderr).toMatch(/duplicate default server/);
}

/**
 * The first deploy reloads nginx (the site is new): its old worker may still take a connection for a moment
 * and answer with the old config. The load starts once only the new worker is left.
 */
export async function nginxSettled(stack: ServiceStack): Promise<void> {
  const workers = () =>
    readdirSync('/proc').filter((d) => {
      try {
        return (
          /^\d+$/.test(d) &&
          readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ')[1] === String(stack.nginxPid())
        );
      } catch {
        return false;
      }
    }).length;
  for (let i = 0; i < 200 && workers() !== 1; i++) await new Promise((r) => setTimeout(r, 50));
}

/**
 * A deploy root the daemons (in the machine's own namespace) can see: inside the stack's dir, owned by the
 * deploy user.
 */
export function deployRootIn(stack: ServiceStack, name: string): string {
  const dir = path.join(stack.dir, name);
  mkdirSync(dir);
  const { uid, gid } = deployUserIds();
  chownSync(dir, uid, gid);
  return dir;
}
