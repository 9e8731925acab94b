// The nginx + supervisord harness itself: a site and a program installed the way a deploy installs
// them answer through nginx, a broken site fails the config test, and stop() leaves nothing running.
import { execFileSync, execSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServiceStack, startServiceStack } from '../helpers/services.js';

let stack: ServiceStack;

beforeAll(async () => {
  stack = await startServiceStack();
}, 60_000);
afterAll(() => stack?.stop(), 60_000);

const sh = (command: string) => spawnSync('sh', ['-c', command], { encoding: 'utf8' });

/** nginx reloads and the program starts asynchronously: ask until the answer is the expected one. */
async function answer(expected: string): Promise<{ status: number; body: string }> {
  let last = { status: 0, body: '' };
  for (let i = 0; i < 100; i++) {
    last = await stack.get('/');
    if (last.body === expected) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  return last;
}

/** Kept out of the harness's API on purpose: the test looks at processes from the outside. */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('services harness: real nginx and supervisord in a temp dir', { timeout: 60_000 }, () => {
  it('starts both on loopback / a unix socket; nginx answers 503 until a site is installed', async () => {
    expect(alive(stack.nginxPid())).toBe(true);
    expect(alive(stack.supervisordPid())).toBe(true);
    expect(stack.nginxPort).not.toBe(stack.appPort);
    expect(await stack.get('/')).toEqual({ status: 503, body: 'no site\n' });
    const status = sh(`${stack.supervisorctl} status`);
    expect(status.status, status.stdout + status.stderr).toBe(0);
    expect(sh(stack.nginxTest).status).toBe(0);
  });

  it('a site proxying to appPort and a supervised node server: 200 hello through nginx', async () => {
    const site = path.join(stack.sitesAvailable, 'hello.conf');
    writeFileSync(
      site,
      `server {
  listen 127.0.0.1:${stack.nginxPort};
  server_name localhost;
  location / { proxy_pass http://127.0.0.1:${stack.appPort}; }
}
`,
    );
    symlinkSync(site, path.join(stack.sitesEnabled, 'hello.conf'));
    const app = `require('http').createServer((q, s) => s.end('hello')).listen(${stack.appPort}, '127.0.0.1')`;
    writeFileSync(
      path.join(stack.supervisorConfD, 'hello.conf'),
      `[program:hello]
command=${process.execPath} -e "${app}"
startsecs=1
startretries=0
autorestart=false
`,
    );
    // A shell whose background job outlives it when supervisord stops the shell: stop() must get it too.
    writeFileSync(
      path.join(stack.supervisorConfD, 'forker.conf'),
      `[program:forker]
command=sh -c "sleep 300 & echo $! > ${stack.dir}/grandchild.pid; exec sleep 301"
startsecs=0
`,
    );
    execSync(`${stack.supervisorctl} reread && ${stack.supervisorctl} update`, { stdio: 'pipe' });
    expect(sh(stack.nginxTest).status).toBe(0);
    execSync(stack.nginxReload, { stdio: 'pipe' });
    expect(await answer('hello')).toEqual({ status: 200, body: 'hello' });
    // The app answers before startsecs has passed, while supervisor still says STARTING.
    let status = '';
    for (let i = 0; i < 50 && !/hello\s+RUNNING/.test(status); i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = sh(`${stack.supervisorctl} status`).stdout;
    }
    expect(status).toMatch(/hello\s+RUNNING/);
    expect(status).toMatch(/forker\s+RUNNING/);
  });

  it('a broken site fails the nginx config test; nginx keeps serving the last good config', async () => {
    const broken = path.join(stack.sitesEnabled, 'broken.conf');
    writeFileSync(broken, 'server { listen 127.0.0.1:1; bogus_directive; }\n');
    const test = sh(stack.nginxTest);
    expect(test.status).not.toBe(0);
    expect(test.stderr).toContain('unknown directive "bogus_directive"');
    expect(test.stderr).toContain('test failed');
    // reload parses the config first and signals nothing when it is broken.
    expect(sh(stack.nginxReload).status).not.toBe(0);
    expect(await stack.get('/')).toEqual({ status: 200, body: 'hello' });
    rmSync(broken);
    expect(sh(stack.nginxTest).status).toBe(0);
  });

  it('stop() leaves no nginx, supervisord, program or program child running, and removes the dir', async () => {
    const nginx = stack.nginxPid();
    const workers = childrenOf(nginx);
    const supervisord = stack.supervisordPid();
    const programs = ['hello', 'forker'].map((name) =>
      Number(execFileSync('sh', ['-c', `${stack.supervisorctl} pid ${name}`], { encoding: 'utf8' })),
    );
    const grandchild = Number(readFileSync(path.join(stack.dir, 'grandchild.pid'), 'utf8'));
    const pids = [nginx, ...workers, supervisord, ...programs, grandchild];
    expect(workers.length).toBeGreaterThan(0);
    expect(
      pids.every((pid) => Number.isInteger(pid) && pid > 1 && alive(pid)),
      pids.join(' '),
    ).toBe(true);

    await stack.stop();
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(stack.dir)).toBe(false);
    expect((await stack.get('/')).status).toBe(0);
    await stack.stop();
  });
});
