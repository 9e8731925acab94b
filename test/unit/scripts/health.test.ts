// The health check script (tasks/scripts/health.ts) run by sh against a real HTTP server. supervisorctl is a stub
// here (a script printing the state we give it): a program that answers while supervisor says BACKOFF, or whose pid
// changes between answers, is hard to make on demand with the real supervisord; test/e2e/health.test.ts runs the
// script against the real one.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HealthCheck, healthCheckScript, healthyIn } from '../../../tasks/scripts/health.js';
import { runScript, scratchDir, stubCtl } from '../../helpers/unit.js';

const { freshDir } = scratchDir('health');
let server: http.Server;
let url: string;
let requests = 0;

beforeAll(async () => {
  server = http.createServer((_req, res) => {
    requests++;
    res.end('ok\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const check = (over: Partial<HealthCheck> = {}): HealthCheck => ({
  url,
  expectStatus: 200,
  timeoutSeconds: 2,
  successes: 3,
  intervalSeconds: 0.2,
  ...over,
});

describe('healthCheckScript', () => {
  it('passes after `successes` good answers in a row from one RUNNING process, and says what it saw', async () => {
    const before = requests;
    const result = await runScript(
      healthCheckScript(check(), stubCtl(freshDir(), 'hello RUNNING pid 42, uptime 0:00:05')).text,
    );
    expect(result.code, result.stderr).toBe(0);
    expect(requests - before).toBe(3);
    expect(healthyIn(result.stdout)).toBe(`${url} answered 200 3 times in a row; hello RUNNING pid 42, uptime 0:00:05`);
  });

  it(
    'fails while supervisor does not say RUNNING, ' +
      'however well the URL answers; shows the state and the stderr log',
    async () => {
      const result = await runScript(
        healthCheckScript(
          check(),
          stubCtl(freshDir(), 'hello BACKOFF Exited too quickly (process log may have details)'),
        ).text,
      );
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(
        `health check failed after 2s: ${url} answered 200, but supervisor says: hello BACKOFF Exited too quickly`,
      );
      expect(result.stderr).toContain("last lines of hello's stderr log");
      expect(result.stderr).toContain('boom: from the log');
    },
  );

  it('fails when the program restarted between two answers (its pid changed)', async () => {
    const result = await runScript(
      healthCheckScript(check(), stubCtl(freshDir(), 'hello RUNNING pid $n, uptime 0:00:01')).text,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('but the program restarted between two answers');
  });

  it('without a supervisor program, good answers in a row are enough', async () => {
    const result = await runScript(healthCheckScript(check({ successes: 2 })).text);
    expect(result.code, result.stderr).toBe(0);
    expect(healthyIn(result.stdout)).toBe(`${url} answered 200 2 times in a row`);
  });
});
