// Connecting is bounded: at most maxConnects handshakes at once (default 50), and a host that accepts TCP and
// never answers costs one connect timeout: the run ends naming it, and no host is changed.
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject } from '../helpers/project.js';
import { type SshFleet, startSshHosts } from '../helpers/sshd.js';

/** A TCP server on loopback that accepts and never says a word; counts the connections open at once. */
async function startSilentHost() {
  let open = 0;
  let most = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    // Counted after this turn of the event loop: a client that closed one connection and then opened the next
    // (a freed connect slot) can reach us in the same turn, and its close must count first.
    let counted = false;
    let gone = false;
    setImmediate(() => {
      if (gone) return;
      counted = true;
      most = Math.max(most, ++open);
    });
    // The client's close is seen as the end of what it sends (or a reset), in the turn it arrives.
    const leave = () => {
      if (gone) return;
      gone = true;
      if (counted) open--;
    };
    socket.on('error', leave);
    socket.on('end', leave);
    socket.resume(); // reads (and drops) what comes, so that a client closing is seen
    socket.on('close', () => {
      leave();
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    most: () => most,
    /** Once the connections of earlier runs are gone, counts afresh. */
    async reset() {
      for (let i = 0; i < 40 && open > 0; i++) await new Promise((r) => setTimeout(r, 50));
      most = open;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

let fleet: SshFleet;
let silent: Awaited<ReturnType<typeof startSilentHost>>;
beforeAll(async () => {
  fleet = await startSshHosts(2);
  silent = await startSilentHost();
}, 60_000);
afterAll(async () => {
  await silent?.stop();
  await fleet?.stop();
});

const silentHosts = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    name: `dead${i + 1}`,
    host: '127.0.0.1',
    port: silent.port,
    user: 'slipway',
    privateKey: fleet.clientKey,
    deployTo: '/srv/bounded',
  }));

describe('bounded connects', () => {
  it('a host that accepts TCP and never answers: one connect timeout, the run ends naming it, nothing changes', async () => {
    const hosts = [...fleet.hosts.map((h) => fleet.configHost(h, '/srv/bounded')), ...silentHosts(1)];
    const project = makeProject({
      format: 'json',
      config: { knownHosts: fleet.knownHosts, dependencies: { type: 'none' }, connectTimeoutSeconds: 2 },
      hosts,
    });
    try {
      const result = await project.run(['deploy', '--waves', '1']);
      expect(result.code, result.stdout).toBe(1);
      expect(result.stderr).toMatch(
        /dead1: cannot connect to slipway@127\.0\.0\.1:\d+: Timed out while waiting for handshake/,
      );
      for (const h of fleet.hosts) expect(existsSync(path.join(h.srvDir, 'bounded'))).toBe(false);
    } finally {
      project.cleanup();
    }
  }, 60_000);

  it('at most maxConnects handshakes at once; 50 by default', async () => {
    for (const [hosts, maxConnects, expected] of [
      [12, 4, 4],
      [60, undefined, 50],
    ] as const) {
      const project = makeProject({
        format: 'json',
        config: { knownHosts: fleet.knownHosts, connectTimeoutSeconds: 1, ...(maxConnects ? { maxConnects } : {}) },
        hosts: silentHosts(hosts),
      });
      try {
        await silent.reset();
        const result = await project.run(['releases']);
        expect(result.code).toBe(1);
        expect(result.stderr.match(/Timed out while waiting for handshake/g)).toHaveLength(hosts);
        expect(silent.most()).toBe(expected);
      } finally {
        project.cleanup();
      }
    }
  }, 90_000);
});
