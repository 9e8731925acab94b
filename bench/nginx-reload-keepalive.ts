// What nginx's graceful reload (`nginx -s reload`) does to idle client keep-alive connections (not a test):
// a throwaway nginx on 127.0.0.1 answering `return 200`, N keep-alive connections each answered once and left
// idle, then a reload. Per connection: did the old worker close it, and how long after the reload signal; then
// the next request sent on it at once (raw sockets: the request goes out whatever the client knows), and, with
// Node's keep-alive agent (what a real client does), requests sent `delay` ms after the reload: failed or not.
//   npx tsx bench/nginx-reload-keepalive.ts [connections=20] [rounds=5]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const N = Number(process.argv[2] ?? 20);
const ROUNDS = Number(process.argv[3] ?? 5);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'nginx-reload-'));
mkdirSync(path.join(dir, 'logs'));
const port = await freePort();
writeFileSync(
  path.join(dir, 'nginx.conf'),
  [
    `pid ${dir}/nginx.pid;`,
    'error_log stderr;',
    'worker_processes 1;',
    'events {}',
    'http {',
    '  access_log off;',
    '  keepalive_timeout 75s;',
    `  server { listen 127.0.0.1:${port}; location / { return 200 "ok\\n"; } }`,
    '}',
    '',
  ].join('\n'),
);
// stdio ignored: the daemonized master would otherwise hold execFileSync's pipes open.
const nginx = (...args: string[]) =>
  execFileSync('nginx', ['-p', `${dir}/`, '-c', `${dir}/nginx.conf`, ...args], { stdio: 'ignore' });
const version = spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr.trim();
nginx();
await sleep(300);

const REQUEST = `GET / HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n`;

/** Raw sockets: each answered once, idle; reload; when does each close; does a request written at once succeed. */
async function rawRound() {
  const sockets = await Promise.all(
    Array.from(
      { length: N },
      () =>
        new Promise<{ socket: net.Socket; data: string[]; closedAt: number[] }>((resolve) => {
          const socket = net.connect(port, '127.0.0.1');
          const c = { socket, data: [] as string[], closedAt: [] as number[] };
          socket.on('data', (d) => {
            c.data.push(d.toString());
            if (c.data.length === 1) resolve(c);
          });
          socket.on('end', () => c.closedAt.push(performance.now()));
          socket.on('error', () => c.closedAt.push(performance.now()));
          socket.write(REQUEST);
        }),
    ),
  );
  await sleep(200);
  const reloadAt = performance.now();
  nginx('-s', 'reload');
  // The next request on each connection, written at once (a client that has not yet seen any close).
  for (const c of sockets) if (!c.socket.destroyed) c.socket.write(REQUEST, () => {});
  await sleep(1500);
  const answered = sockets.filter((c) => c.data.length >= 2 && /200 OK/.test(c.data[1])).length;
  const closed = sockets.filter((c) => c.closedAt.length).map((c) => c.closedAt[0] - reloadAt);
  for (const c of sockets) c.socket.destroy();
  return { answered, closed };
}

/** Node's keep-alive agent (maxSockets N): N idle pooled connections; after the reload, N requests at `delay` ms. */
async function agentRound(delay: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: N });
  const get = () =>
    new Promise<'ok' | string>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200 ? 'ok' : `status ${res.statusCode}`));
      });
      req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
  await Promise.all(Array.from({ length: N }, get));
  await sleep(200);
  nginx('-s', 'reload');
  if (delay) await sleep(delay);
  const results = await Promise.all(Array.from({ length: N }, get));
  agent.destroy();
  await sleep(300);
  return results.filter((r) => r !== 'ok');
}

try {
  const raw = [];
  for (let i = 0; i < ROUNDS; i++) raw.push(await rawRound());
  const agent: Record<number, string[]> = {};
  for (const delay of [0, 1, 5, 20, 100, 500]) {
    agent[delay] = [];
    for (let i = 0; i < ROUNDS; i++) agent[delay].push(...(await agentRound(delay)));
  }
  const closed = raw.flatMap((r) => r.closed).sort((a, b) => a - b);
  const total = N * ROUNDS;
  console.log(`# nginx reload vs idle client keep-alive connections\n`);
  console.log(`${new Date().toISOString().slice(0, 10)} · ${version} · ${N} connections × ${ROUNDS}`);
  console.log(`\nraw sockets, next request written right after \`nginx -s reload\` returned:`);
  console.log(`  answered: ${raw.reduce((n, r) => n + r.answered, 0)} / ${total}`);
  console.log(
    `  closed by the old worker: ${closed.length} / ${total}, ` +
      `${closed[0]?.toFixed(1)}–${closed.at(-1)?.toFixed(1)} ms after the signal`,
  );
  console.log(`\nNode keep-alive agent, ${N} requests on the idle pool \`delay\` ms after the reload:`);
  for (const [delay, fails] of Object.entries(agent))
    console.log(
      `  ${delay} ms: ${fails.length} / ${total} failed${fails.length ? ` (${[...new Set(fails)].join(', ')})` : ''}`,
    );
} finally {
  try {
    nginx('-s', 'quit');
  } catch {}
  await sleep(300);
  rmSync(dir, { recursive: true, force: true });
}
