// The health check's rules: config keys validated at load, and the check script run by sh against a
// real HTTP server. supervisorctl is a stub here (a script printing the state we give it): a program
// that answers while supervisor says BACKOFF, or whose pid changes between answers, is hard to make
// on demand with the real supervisord; test/e2e/health.test.ts runs the script against the real one.
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../tasks/config/load.js';
import { ConfigError } from '../../tasks/lib/errors.js';
import { failedFacts } from '../../tasks/builtin/status.js';
import { type HealthCheck, healthCheckScript, healthyIn } from '../../tasks/scripts/health.js';
import { restartScript } from '../../tasks/scripts/services.js';
import type { Services } from '../../tasks/config/types.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'slipway-health-'));
let server: http.Server;
let url: string;
let requests = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    requests++;
    res.end('ok\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(scratch, { recursive: true, force: true });
});

let counter = 0;
/** A stub supervisorctl: `status` prints `line` (with `$n`, a number that grows on each call), `tail` a log line. */
function stubCtl(line: string): Services {
  const dir = path.join(scratch, `ctl${++counter}`);
  mkdirSync(dir);
  const ctl = path.join(dir, 'supervisorctl');
  const n = path.join(dir, 'n');
  writeFileSync(n, '100');
  writeFileSync(ctl, `#!/bin/sh\nn=$(cat ${n}); echo $((n + 1)) > ${n}\ncase "$1" in status) echo "${line}";; tail) echo 'boom: from the log';; esac\n`);
  chmodSync(ctl, 0o755);
  return { sudo: '', supervisor: { program: path.join(dir, 'hello.conf'), ctl, name: 'hello' } };
}

const check = (over: Partial<HealthCheck> = {}): HealthCheck => ({ url, expectStatus: 200, timeoutSeconds: 2, successes: 3, intervalSeconds: 0.2, ...over });

async function runScript(text: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)('sh', ['-c', text]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('healthCheckScript', () => {
  it('passes after `successes` good answers in a row from one RUNNING process, and says what it saw', async () => {
    const before = requests;
    const result = await runScript(healthCheckScript(check(), stubCtl('hello RUNNING pid 42, uptime 0:00:05')).text);
    expect(result.code, result.stderr).toBe(0);
    expect(requests - before).toBe(3);
    expect(healthyIn(result.stdout)).toBe(`${url} answered 200 3 times in a row; hello RUNNING pid 42, uptime 0:00:05`);
  });

  it('fails while supervisor does not say RUNNING, however well the URL answers; shows the state and the stderr log', async () => {
    const result = await runScript(healthCheckScript(check(), stubCtl('hello BACKOFF Exited too quickly (process log may have details)')).text);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`health check failed after 2s: ${url} answered 200, but supervisor says: hello BACKOFF Exited too quickly`);
    expect(result.stderr).toContain("last lines of hello's stderr log");
    expect(result.stderr).toContain('boom: from the log');
  });

  it('fails when the program restarted between two answers (its pid changed)', async () => {
    const result = await runScript(healthCheckScript(check(), stubCtl('hello RUNNING pid $n, uptime 0:00:01')).text);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('but the program restarted between two answers');
  });

  it('without a supervisor program, good answers in a row are enough', async () => {
    const result = await runScript(healthCheckScript(check({ successes: 2 })).text);
    expect(result.code, result.stderr).toBe(0);
    expect(healthyIn(result.stdout)).toBe(`${url} answered 200 2 times in a row`);
  });
});

describe('restartScript', () => {
  it('shows the program’s stderr log when supervisor cannot start it', async () => {
    const services = stubCtl('hello FATAL Exited too quickly');
    // The stub's `restart` prints nothing and `reread`/`update` succeed: make restart answer like supervisor does.
    writeFileSync(services.supervisor!.ctl, `#!/bin/sh\ncase "$1" in restart) echo 'hello: ERROR (spawn error)';; tail) echo 'boom: DATABASE_URL is not set';; esac\n`);
    const result = await runScript(restartScript(services, '/srv/hello', false).text);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('hello: ERROR (spawn error)');
    expect(result.stderr).toContain('boom: DATABASE_URL is not set');
  });
});

describe('status facts', () => {
  it('a program not RUNNING, nginx -t failing or a failed health check are failures', () => {
    expect(failedFacts({ supervisor: 'hello RUNNING pid 1, uptime 0:01:00', nginx: 'config ok', health: 'ok: answered 200' })).toEqual([]);
    const down = { supervisor: 'hello STOPPED Dec 01', nginx: 'config FAILS nginx -t', health: 'FAILED: no answer' };
    expect(failedFacts(down)).toEqual(['supervisor', 'nginx', 'health']);
  });
});

describe('healthcheck config', () => {
  const write = (healthcheck: unknown) => {
    const dir = mkdtempSync(path.join(scratch, 'config-'));
    const file = path.join(dir, 'deploy.config.json');
    const hosts = [{ name: 'local', local: true, deployTo: 'deploy' }];
    writeFileSync(file, JSON.stringify({ application: 'hello', healthcheck, environments: { local: { hosts } } }));
    return loadConfig({ configFile: file });
  };

  it('successes defaults to 2 and intervalSeconds to 1', async () => {
    expect((await write({ url: 'http://127.0.0.1:8080/health' })).healthcheck).toMatchObject({ successes: 2, intervalSeconds: 1 });
  });

  it('bad values exit 2 naming each key and what is valid', async () => {
    const error = await write({ url: 'http://127.0.0.1:8080/health', successes: 0, intervalSeconds: -1 }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).exitCode).toBe(2);
    expect((error as Error).message).toMatch(/healthcheck\.successes: .*>=1/);
    expect((error as Error).message).toMatch(/healthcheck\.intervalSeconds: .*>0/);
  });

  it('a timeout too short for the answers in a row it asks for is refused', async () => {
    const error = await write({ url: 'http://127.0.0.1:8080/health', successes: 4, intervalSeconds: 10, timeoutSeconds: 29 }).catch((e: Error) => e);
    expect((error as ConfigError).exitCode).toBe(2);
    expect((error as Error).message).toContain('healthcheck.timeoutSeconds: must be at least (successes − 1) × intervalSeconds = 30 s');
  });
});
