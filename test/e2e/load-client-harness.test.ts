// The load client (test/helpers/load-client.ts) against a tiny http server of this test's own: it must see
// every kind of failure, or a "0 failed" from it would prove nothing.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadSummary, releasesInOrder, startLoad } from '../helpers/load-client.js';

const A = '2026.12.01-06.00.00-aaaaaaa';
const B = '2026.12.01-06.01.00-bbbbbbb';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: http.Server;
let base: string;
let connections = 0;
let live = A;
const sockets = new Set<net.Socket>();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/ok') return res.end(`hello from release ${live}\n`);
    if (req.url === '/502') {
      res.statusCode = 502;
      return res.end(`bad gateway ${live}\n`);
    }
    if (req.url === '/plain') return res.end('hello\n');
    if (req.url === '/reset') return req.socket.destroy();
    if (req.url === '/slow') return; // never answers
    res.statusCode = 404;
    res.end();
  });
  server.on('connection', (socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

async function load(url: string, ms: number, extra: Partial<Parameters<typeof startLoad>[0]> = {}) {
  const handle = startLoad({ url, rate: 40, timeoutMs: 2000, ...extra });
  await sleep(ms);
  return handle.stop();
}

const kinds = (s: LoadSummary) => new Set(s.failed.map((f) => f.kind));

describe('load client', () => {
  it('a healthy server: every request answered, half of them over kept-alive connections', async () => {
    const before = connections;
    const s = await load(`${base}/ok`, 1000);
    expect(s.sent).toBeGreaterThanOrEqual(30);
    expect(s.failed).toEqual([]);
    expect(s.ok).toBe(s.sent);
    expect(s.byRelease).toEqual({ [A]: s.sent });
    expect(s.releasesInOrder).toEqual([A]);
    const kept = s.answers.filter((a) => a.keepAlive).length;
    expect(Math.abs(kept - (s.sent - kept))).toBeLessThanOrEqual(1);
    // One connection per new-connection request, plus the keep-alive pool (4).
    expect(connections - before).toBe(s.sent - kept + 4);
    expect(s.latencies().count).toBe(s.sent);
  });

  it('counts a reset connection, a 502, a timeout, a body without a release id and a refused connection', async () => {
    const reset = await load(`${base}/reset`, 300);
    expect(reset.sent).toBeGreaterThan(0);
    expect(reset.ok).toBe(0);
    expect(reset.failed).toHaveLength(reset.sent);
    expect(kinds(reset)).toEqual(new Set(['reset']));
    // Both kinds of client see it.
    expect(new Set(reset.failed.map((f) => f.keepAlive))).toEqual(new Set([true, false]));

    const bad = await load(`${base}/502`, 300);
    expect(bad.failed).toHaveLength(bad.sent);
    expect(kinds(bad)).toEqual(new Set(['status']));
    expect(bad.failed[0].detail).toMatch(/^502 bad gateway/);

    const plain = await load(`${base}/plain`, 300);
    expect(plain.failed).toHaveLength(plain.sent);
    expect(kinds(plain)).toEqual(new Set(['no-release']));

    const slow = await load(`${base}/slow`, 300, { timeoutMs: 200 });
    expect(slow.failed).toHaveLength(slow.sent);
    expect(kinds(slow)).toEqual(new Set(['timeout']));

    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const refused = await load(`http://127.0.0.1:${port}/ok`, 300);
    expect(refused.failed).toHaveLength(refused.sent);
    expect(kinds(refused)).toEqual(new Set(['refused']));
  });

  it('over a unix socket; a missing socket file is a refused connection', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'load-client-'));
    const socketPath = path.join(dir, 'app.sock');
    const unix = http.createServer((_req, res) => res.end(`release ${B}\n`));
    try {
      const missing = await load('http://localhost/', 200, { socketPath });
      expect(missing.sent).toBeGreaterThan(0);
      expect(kinds(missing)).toEqual(new Set(['refused']));
      await new Promise<void>((r) => unix.listen(socketPath, r));
      const s = await load('http://localhost/', 300, { socketPath });
      expect(s.failed).toEqual([]);
      expect(s.byRelease).toEqual({ [B]: s.sent });
    } finally {
      await new Promise((r) => unix.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('follows the server from one release to the next; latencies by time window', async () => {
    live = A;
    const handle = startLoad({ url: `${base}/ok`, rate: 40 });
    await sleep(400);
    const switched = Date.now();
    live = B;
    const first = await handle.waitFor(B, 2000);
    await sleep(300);
    const s = await handle.stop();
    live = A;
    expect(s.failed).toEqual([]);
    expect(s.releasesInOrder).toEqual([A, B]);
    expect(first.at).toBe(s.firstSeen[B]);
    expect(s.firstSeen[B]).toBeGreaterThanOrEqual(switched - 100);
    const before = s.latencies(-Infinity, switched);
    const after = s.latencies(switched);
    expect(before.count + after.count).toBe(s.ok);
    expect(before.count).toBeGreaterThan(0);
    expect(before.p50).toBeLessThanOrEqual(before.p99);
    expect(before.p99).toBeLessThanOrEqual(before.max);
  });
});

describe('releasesInOrder', () => {
  const seq = (...pairs: [number, string][]) => pairs.map(([at, release]) => ({ at, release }));

  it('the old release answering just after the first answer of the new one is overlap, not a move', () => {
    expect(releasesInOrder(seq([0, A], [10, A], [20, B], [30, A], [40, B], [50, B]))).toEqual([A, B]);
  });

  it('a move back is a move: the old release answering last, or long after the switch', () => {
    expect(releasesInOrder(seq([0, A], [20, B], [30, B], [40, A], [50, A]))).toEqual([A, B, A]);
    expect(releasesInOrder(seq([0, A], [20, B], [5000, A], [5010, B]), 2000)).toEqual([A, B, A, B]);
  });

  it('sorts by send time, and a third release is always a move', () => {
    const C = '2026.12.01-06.02.00-ccccccc';
    expect(releasesInOrder(seq([50, C], [0, A], [20, B], [30, B], [40, C]))).toEqual([A, B, C]);
    expect(releasesInOrder(seq([0, A], [20, B], [30, C], [40, A], [50, C]))).toEqual([A, B, C, A, C]);
  });
});
