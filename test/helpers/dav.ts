// A real WebDAV-capable nginx for the `http` artifact store: PUT/DELETE (dav_methods), JSON directory listings
// (autoindex_format json), on a 127.0.0.x address only; started as its own process and stopped by its PID.
// With `auth` ("user:password"), everything but GET/HEAD needs it (HTTP basic); reads stay open, as hosts fetch.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './sshd.js';

const NGINX = '/usr/sbin/nginx';

export interface DavServer {
  /** The store's base URL, e.g. http://127.0.0.9:41234/artifacts */
  url: string;
  /** The folder nginx serves: a test may tamper with an object there. */
  root: string;
  /** nginx's master PID while it runs. */
  pid(): number;
  /** Stops nginx (SIGTERM to its master, by PID); the port stays reserved for start(). */
  stopServer(): Promise<void>;
  /** Starts it again on the same address and port. */
  start(): Promise<void>;
  /** Stops it and removes its files. */
  stop(): Promise<void>;
}

function config(dir: string, address: string, port: number, data: string, auth: boolean): string {
  return `daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
worker_processes 1;
events { worker_connections 64; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen ${address}:${port};
    location /artifacts/ {
      root ${data};
      dav_methods PUT DELETE MKCOL COPY MOVE;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
      client_max_body_size 0;
      autoindex on;
      autoindex_format json;${
        auth
          ? `
      limit_except GET { auth_basic "store"; auth_basic_user_file ${dir}/htpasswd; }`
          : ''
      }
    }
  }
}
`;
}

function connects(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

export async function startDavServer(address = '127.0.0.9', { auth }: { auth?: string } = {}): Promise<DavServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'slipway-dav-'));
  chmodSync(dir, 0o711);
  const data = path.join(dir, 'data');
  // The workers run as nobody (the master is root): they write the objects and their temp files.
  const nobody = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }));
  const nogroup = Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }));
  for (const d of [path.join(data, 'artifacts'), path.join(dir, 'body')]) {
    mkdirSync(d, { recursive: true });
    chownSync(d, nobody, nogroup);
  }
  const port = await freePort(address);
  const conf = path.join(dir, 'nginx.conf');
  // nginx reads {PLAIN} passwords from its user file: no hashing tool needed.
  if (auth) {
    const colon = auth.indexOf(':');
    writeFileSync(path.join(dir, 'htpasswd'), `${auth.slice(0, colon)}:{PLAIN}${auth.slice(colon + 1)}\n`);
    chmodSync(path.join(dir, 'htpasswd'), 0o644);
  }
  writeFileSync(conf, config(dir, address, port, data, auth !== undefined));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const start = async () => {
    child = spawn(NGINX, ['-p', `${dir}/`, '-c', conf, '-e', `${dir}/error.log`], { stdio: 'ignore' });
    const proc = child;
    exited = new Promise((resolve) => proc.once('close', () => resolve()));
    const deadline = Date.now() + 10_000;
    while (!(await connects(address, port))) {
      if (proc.exitCode !== null || Date.now() > deadline) {
        const log = readFileSync(path.join(dir, 'error.log'), 'utf8').slice(-2000);
        proc.kill('SIGKILL');
        throw new Error(`nginx (WebDAV) did not start on ${address}:${port}:\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stopServer = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid!, 'SIGTERM');
      await exited;
    }
    child = undefined;
  };
  const onExit = () => child?.pid && child.exitCode === null && process.kill(child.pid, 'SIGKILL');
  process.once('exit', onExit);
  await start();
  return {
    url: `http://${address}:${port}/artifacts`,
    root: path.join(data, 'artifacts'),
    pid: () => child?.pid ?? 0,
    stopServer,
    start,
    async stop() {
      process.removeListener('exit', onExit);
      await stopServer();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
