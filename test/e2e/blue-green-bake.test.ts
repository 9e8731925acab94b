// rollout.bakeSeconds with the blue-green cutover, on the local target with real nginx and supervisord, in both
// listen modes: the bake polls the live slot itself (its socket, or its port) and that slot's supervisor program;
// a release that goes bad during the bake is rolled back through the same cutover (traffic back to the old slot,
// still running: the drain comes after the bake), and in socket mode the load client sees no failed request.
import { execFile } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadHandle, startLoad } from '../helpers/load-client.js';
import { makeProject, type Project, releaseIdOf } from '../helpers/project.js';
import { type ServiceStack, startServiceStack } from '../helpers/services.js';

/** The sample app, changed so that /health answers 500 once the process is `ms` old (its `/` keeps answering). */
function healthFailsAfter(original: string, ms: number): string {
  return original.replace(
    "if (req.url === '/health') {",
    `if (req.url === '/health') {\n    if (Date.now() - started > ${ms}) res.statusCode = 500;`,
  );
}

/** Two free ports on 127.0.0.1, held open together so that they differ. */
async function twoFreePorts(): Promise<[number, number]> {
  const servers = [net.createServer(), net.createServer()];
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port) as [number, number];
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

const slotState = (project: Project) =>
  JSON.parse(readFileSync(path.join(project.deployTo, 'run/state.json'), 'utf8')) as {
    live: string;
    blue: string | null;
    green: string | null;
    operation: unknown;
  };

for (const listen of ['socket', 'port'] as const) {
  describe(`bakeSeconds with blue-green, listen '${listen}'`, () => {
    let stack: ServiceStack;
    let project: Project;
    let load: LoadHandle | undefined;
    let good: string;

    beforeAll(async () => {
      stack = await startServiceStack();
      const base = stack.deployConfig() as { healthcheck: Record<string, unknown> };
      const ports = listen === 'port' ? await twoFreePorts() : undefined;
      project = makeProject({
        format: 'json',
        config: {
          ...base,
          // One good answer starts the slot: what catches the release going bad is the bake.
          healthcheck: { ...base.healthcheck, successes: 1, intervalSeconds: 0.3, timeoutSeconds: 10 },
          cutover: { strategy: 'blue-green', listen, ...(ports ? { ports } : {}), drainSeconds: 2 },
          rollout: { bakeSeconds: 5 },
        },
      });
      // nginx's workers (nobody) reach <deployTo>/run/live.sock: every folder above it must let them through.
      chmodSync(project.dir, 0o711);
    }, 60_000);
    afterAll(async () => {
      await load?.stop();
      await stack?.stop();
      project?.cleanup();
    });

    it('a healthy release: the bake polls the new slot itself and passes; then the old slot drains', async () => {
      for (let i = 0; i < 2; i++) {
        const result = await project.run(['deploy']);
        expect(result.code, result.stderr + result.stdout).toBe(0);
        // The bake names the slot it watched: before this change it asked supervisor for `hello`, no such program.
        const where = listen === 'port' ? 'port \\d+' : '\\S+/run/(blue|green)\\.sock';
        expect(result.stdout).toMatch(new RegExp(`bake .*hello-(blue|green) on ${where}: stayed healthy for 5s`));
        expect(result.stdout).toMatch(i ? /drain-slot .*drained and stopped hello-/ : /drain-slot \(skipped\)/);
        good = releaseIdOf(result.stdout);
        project.commit({ 'README.md': `deploy ${i}\n` }, `deploy ${i}`);
      }
      expect(await stack.answer(good)).toContain(good);
    }, 120_000);

    it('a release that goes bad during the bake: traffic back on the old slot, the new one stopped, marked bad', async () => {
      const before = slotState(project);
      if (listen === 'socket') {
        load = startLoad({ url: `http://127.0.0.1:${stack.nginxPort}/`, host: 'localhost', rate: 20 });
        await load.waitFor(good, 20_000);
      }
      const original = readFileSync(path.join(project.dir, 'app/server.js'), 'utf8');
      project.commit({ 'server.js': healthFailsAfter(original, 2500) }, 'health fails after 2.5 s');
      const result = await project.run(['deploy']);
      expect(result.code, result.stdout + result.stderr).toBe(1);
      const bad = releaseIdOf(result.stdout);
      expect(result.stdout).toMatch(/move-traffic .*→ hello-(blue|green)/);
      expect(result.stderr).toMatch(/unhealthy \d+s into the bake: .*answered 500/);
      expect(result.stderr).toMatch(/rolled back automatically/);
      expect(project.live()).toBe(good);
      expect(await stack.answer(good)).toContain(good);
      const after = slotState(project);
      expect(after.live).toBe(before.live);
      expect(after[after.live as 'blue' | 'green']).toBe(good);
      expect(after.operation).toBeNull();
      const other = after.live === 'blue' ? 'green' : 'blue';
      const status = await new Promise<string>((resolve) =>
        execFile('sh', ['-c', `${stack.supervisorctl} status hello-${other}`], (_e, out) => resolve(String(out))),
      );
      expect(status).toMatch(/STOPPED|EXITED/);
      const meta = JSON.parse(
        readFileSync(path.join(project.deployTo, 'releases', bad, '.slipway/release.json'), 'utf8'),
      );
      expect(meta.status).toBe('bad');
      if (load) {
        // The bad release served users (its `/` works) until the bake failed; the move back lost no request.
        const summary = await load.stop();
        load = undefined;
        expect(summary.failed).toEqual([]);
        expect(summary.releasesInOrder).toEqual([good, bad, good]);
      }
      project.commit({ 'server.js': original }, 'fixed');
    }, 120_000);
  });
}
