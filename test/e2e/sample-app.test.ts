// The sample app (examples/hello/server.js) as both cutover strategies need it: it names its release, listens
// on a port or a unix socket, and on SIGTERM drains (stops accepting, finishes what is in flight) and exits.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const RELEASE = '2026.12.01-06.00.00-abcdef1';
let app: string;
const children: ChildProcess[] = [];

beforeAll(() => {
  app = mkdtempSync(path.join(tmpdir(), 'sample-app-'));
  for (const file of ['server.js', 'package.json', 'package-lock.json'])
    cpSync(path.join(ROOT, 'examples/hello', file), path.join(app, file));
  // As a deploy installs it (tasks/scripts/environment.ts).
  execFileSync('npm', ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: app });
});
afterEach(() => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});
afterAll(() => rmSync(app, { recursive: true, force: true }));

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts the app and waits for its "listening" line (or its exit). */
async function startApp(env: Record<string, string>): Promise<Started> {
  const child = spawn('node', ['server.js'], { cwd: app, env: { PATH: process.env.PATH, ...env } });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  await Promise.race([
    exited,
    new Promise<void>((resolve) => child.stdout?.on('data', () => out.includes('listening on') && resolve())),
  ]);
  return { child, output: () => out, exited };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function get(
  target: { port: number } | { socketPath: string },
  pathname = '/',
  agent?: http.Agent,
): Promise<{ status: number; body: string; connection?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', ...target, path: pathname, agent: agent ?? false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('sample app', () => {
  it('on PORT: names the release from RELEASE_ID without metadata, from .slipway/release.json with it', async () => {
    const port = await freePort();
    const a = await startApp({ PORT: String(port), RELEASE_ID: RELEASE });
    expect((await get({ port })).body).toContain(`hello from release ${RELEASE}`);
    expect((await get({ port }, '/health')).body).toBe(`${RELEASE}\n`);
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);

    mkdirSync(path.join(app, '.slipway'));
    writeFileSync(path.join(app, '.slipway/release.json'), JSON.stringify({ id: '2026.12.01-06.05.00-1234567' }));
    try {
      const b = await startApp({ PORT: String(port), RELEASE_ID: RELEASE });
      expect((await get({ port })).body).toContain('hello from release 2026.12.01-06.05.00-1234567');
      b.child.kill('SIGTERM');
      expect(await b.exited).toBe(0);
    } finally {
      rmSync(path.join(app, '.slipway'), { recursive: true });
    }
  });

  it('on SOCKET: a stale socket file is replaced, the socket is 0666; not a socket: refused', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sample-app-run-'));
    const socketPath = path.join(dir, 'blue.sock');
    try {
      // A socket file whose process is gone, as a killed app leaves it.
      execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', socketPath]);
      expect(lstatSync(socketPath).isSocket()).toBe(true);
      const a = await startApp({ SOCKET: socketPath, RELEASE_ID: RELEASE });
      expect((await get({ socketPath })).body).toContain(`hello from release ${RELEASE}`);
      expect(lstatSync(socketPath).mode & 0o777).toBe(0o666);
      a.child.kill('SIGTERM');
      expect(await a.exited).toBe(0);
      expect(existsSync(socketPath)).toBe(false);

      writeFileSync(socketPath, 'not a socket\n');
      const b = await startApp({ SOCKET: socketPath, RELEASE_ID: RELEASE });
      expect(await b.exited).not.toBe(0);
      expect(b.output()).toContain(`SOCKET ${socketPath} exists and is not a socket`);
      expect(existsSync(socketPath)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it(
    'SIGTERM: stops accepting, closes idle keep-alive connections, ' +
      'finishes the request in flight with Connection: close, exits 0',
    async () => {
      const port = await freePort();
      const a = await startApp({ PORT: String(port), RELEASE_ID: RELEASE });
      const idleAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const busyAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        // An idle keep-alive connection, and a busy one whose answer takes 1.5 s.
        expect((await get({ port }, '/', idleAgent)).connection).toBe('keep-alive');
        const idleSocket = Object.values(idleAgent.freeSockets)[0]?.[0];
        expect(idleSocket).toBeDefined();
        const idleClosed = new Promise<void>((r) => idleSocket?.once('close', () => r()));
        expect((await get({ port }, '/', busyAgent)).connection).toBe('keep-alive');
        const slow = get({ port }, '/?delay=1500', busyAgent);
        await new Promise((r) => setTimeout(r, 300));

        a.child.kill('SIGTERM');
        await idleClosed;
        // Stops accepting. (Now and then a connection made right after the idle one closed is reset, not
        // refused, as if the listening socket closed a moment later: so the first refusal within 1 s counts.)
        let refused: NodeJS.ErrnoException | undefined;
        for (let i = 0; i < 10 && refused?.code !== 'ECONNREFUSED'; i++) {
          refused = await get({ port }).then(
            () => undefined,
            (e) => e,
          );
          expect(refused, 'a new connection was answered while draining').toBeDefined();
          if (refused?.code !== 'ECONNREFUSED') await new Promise((r) => setTimeout(r, 100));
        }
        expect(refused?.code, `${refused?.message}: ${a.output()}`).toBe('ECONNREFUSED');
        const answer = await slow;
        expect(answer.status).toBe(200);
        expect(answer.body).toContain(`hello from release ${RELEASE}`);
        expect(answer.connection).toBe('close');
        expect(await a.exited).toBe(0);
        expect(a.output()).toContain('SIGTERM: draining');
      } finally {
        idleAgent.destroy();
        busyAgent.destroy();
      }
    },
  );
});
