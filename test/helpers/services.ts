// A real nginx and a real supervisord for end-to-end tests, each with its own config in a temp dir,
// nginx listening on 127.0.0.1 only and supervisord on a unix socket; both stopped by PID.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './sshd.js';

export interface ServiceStack {
  dir: string;
  nginxPort: number;
  appPort: number;
  /** The `services` section of a slipway config that manages this stack. */
  services: Record<string, unknown>;
  get(urlPath: string): Promise<{ status: number; body: string }>;
  stop(): Promise<void>;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startServiceStack(): Promise<ServiceStack> {
  const dir = mkdtempSync(path.join(tmpdir(), 'slipway-services-'));
  const nginxDir = path.join(dir, 'nginx');
  const supervisorDir = path.join(dir, 'supervisor');
  for (const d of ['sites-available', 'sites-enabled', 'tmp']) mkdirSync(path.join(nginxDir, d), { recursive: true });
  mkdirSync(path.join(supervisorDir, 'conf.d'), { recursive: true });
  const nginxPort = await freePort();
  const appPort = await freePort();
  const nginxConf = path.join(nginxDir, 'nginx.conf');
  writeFileSync(
    nginxConf,
    `pid ${nginxDir}/nginx.pid;
error_log ${nginxDir}/error.log;
worker_processes 1;
events {}
http {
  access_log off;
  client_body_temp_path ${nginxDir}/tmp/body;
  proxy_temp_path ${nginxDir}/tmp/proxy;
  fastcgi_temp_path ${nginxDir}/tmp/fastcgi;
  uwsgi_temp_path ${nginxDir}/tmp/uwsgi;
  scgi_temp_path ${nginxDir}/tmp/scgi;
  include ${nginxDir}/sites-enabled/*.conf;
  server { listen 127.0.0.1:${nginxPort} default_server; return 503 "no site\\n"; }
}
`,
  );
  const supervisorConf = path.join(supervisorDir, 'supervisord.conf');
  writeFileSync(
    supervisorConf,
    `[unix_http_server]
file=${supervisorDir}/supervisor.sock
chmod=0700
[supervisord]
pidfile=${supervisorDir}/supervisord.pid
logfile=${supervisorDir}/supervisord.log
childlogdir=${supervisorDir}
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://${supervisorDir}/supervisor.sock
[include]
files = ${supervisorDir}/conf.d/*.conf
`,
  );
  const nginx = `/usr/sbin/nginx -p ${nginxDir}/ -c ${nginxConf}`;
  const ctl = `supervisorctl -c ${supervisorConf}`;
  execFileSync('/usr/sbin/nginx', ['-p', `${nginxDir}/`, '-c', nginxConf]);
  execFileSync('supervisord', ['-c', supervisorConf]);
  const pidOf = (file: string) => (existsSync(file) ? Number(readFileSync(file, 'utf8')) : 0);
  await until('supervisord', () => spawnSync('supervisorctl', ['-c', supervisorConf, 'pid']).status === 0);
  const nginxPid = pidOf(path.join(nginxDir, 'nginx.pid'));
  const supervisordPid = pidOf(path.join(supervisorDir, 'supervisord.pid'));

  const get = (urlPath: string) =>
    new Promise<{ status: number; body: string }>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: nginxPort, path: urlPath, headers: { host: 'localhost' }, timeout: 3000 }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', (error) => resolve({ status: 0, body: error.message }));
      req.on('timeout', () => req.destroy(new Error('timeout')));
    });

  let stopped = false;
  return {
    dir,
    nginxPort,
    appPort,
    services: {
      nginx: {
        site: `${nginxDir}/sites-available/hello.conf`,
        enabled: `${nginxDir}/sites-enabled/hello.conf`,
        test: `${nginx} -t -q`,
        reload: `${nginx} -s reload`,
      },
      supervisor: { program: `${supervisorDir}/conf.d/hello.conf`, ctl },
    },
    get,
    async stop() {
      if (stopped) return;
      stopped = true;
      // supervisord stops its programs (stopasgroup) before it exits.
      if (alive(supervisordPid)) process.kill(supervisordPid, 'SIGTERM');
      if (alive(nginxPid)) process.kill(nginxPid, 'SIGQUIT');
      await until('nginx and supervisord to exit', () => !alive(supervisordPid) && !alive(nginxPid), 20_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
