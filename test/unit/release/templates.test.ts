// Template rendering (tasks/release/templates.ts): errors name template and variable, secret detection.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ResolvedConfig } from '../../../tasks/config/types.js';
import { renderTemplates } from '../../../tasks/release/templates.js';
import { scratchDir } from '../../helpers/unit.js';

const { scratch } = scratchDir('secrets');

afterEach(() => vi.restoreAllMocks());

const pem = '-----BEGIN PRIVATE KEY-----\nMIIEvQunitPEMline1AAAA\nBBBBunitPEMline2BBBB\n-----END PRIVATE KEY-----';

describe('renderTemplates', () => {
  const dir = path.join(scratch, 'templates');
  mkdirSync(dir);
  const config = {
    application: 'hello',
    environment: 'local',
    port: 8080,
    serverName: 'localhost',
    vars: {},
    env: { PEM: pem, TOKEN: 'tok-unit-value' },
    templates: { dir, nginx: false, supervisor: false },
    projectRoot: scratch,
    cutover: { strategy: 'restart' },
  } as unknown as ResolvedConfig;
  const host = { name: 'web1', deployTo: '/srv/app', roles: [] } as never;
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
  });

  it('a missing variable: the error names the template and the variable, never [object Object]', async () => {
    writeFileSync(path.join(dir, 'app.conf.hbs'), 'listen {{port}}\nurl={{env.DATABASE_URL}}\n');
    const error = await renderTemplates(config, host, 'r1').catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(
      /^template templates\/app\.conf\.hbs, line 2: variable "env\.DATABASE_URL" is not defined/,
    );
    expect((error as Error).message).not.toContain('[object Object]');
    expect((error as Error).message).not.toContain('tok-unit-value');
  });

  it('a template that holds a secret in a transformed form ({{json env.X}}) is marked secret', async () => {
    writeFileSync(path.join(dir, 'key.json.hbs'), '{ "key": {{json env.PEM}} }\n');
    writeFileSync(path.join(dir, 'plain.conf.hbs'), 'port={{port}}\n');
    const files = await renderTemplates(config, host, 'r1');
    expect(files.map((f) => [f.name, f.secret])).toEqual([
      ['key.json', true],
      ['plain.conf', false],
    ]);
  });
});

describe('renderTemplates with cutover blue-green', () => {
  it('renders the program once per slot (program, socket, release path, drain); the site uses live.sock', async () => {
    const config = {
      application: 'hello',
      environment: 'local',
      port: 8080,
      serverName: 'localhost',
      vars: {},
      env: {},
      templates: { dir: path.resolve(import.meta.dirname, '../../../templates'), nginx: true, supervisor: true },
      projectRoot: scratch,
      services: { sudo: '', supervisor: { program: '/etc/p.conf', ctl: 'supervisorctl', name: 'hello' } },
      cutover: { strategy: 'blue-green', listen: 'socket', drainSeconds: 7 },
    } as unknown as ResolvedConfig;
    const files = await renderTemplates(config, { name: 'web1', deployTo: '/srv/app', roles: [] } as never, 'r1');
    expect(files.map((f) => f.name)).toEqual(['nginx.conf', 'supervisor.blue.conf', 'supervisor.green.conf']);
    const green = files[2].content;
    expect(green).toContain('[program:hello-green]');
    expect(green).toContain('directory=/srv/app/releases/r1');
    expect(green).toContain('environment=SOCKET="/srv/app/run/green.sock",NODE_ENV="production"');
    expect(green).toContain('stopwaitsecs=7');
    expect(green).toContain('/hello-green.err.log');
    expect(files[0].content).toContain('server unix:/srv/app/run/live.sock;');
    const restart = await renderTemplates(
      { ...config, cutover: { strategy: 'restart' } },
      { name: 'web1', deployTo: '/srv/app', roles: [] } as never,
      'r1',
    );
    expect(restart.map((f) => f.name)).toEqual(['nginx.conf', 'supervisor.conf']);
    expect(restart[1].content).toContain('[program:hello]\ncommand=node server.js\ndirectory=/srv/app/current\n');
    expect(restart[1].content).not.toContain('stopwaitsecs');
    expect(restart[0].content).toContain('server 127.0.0.1:8080;');
  });
});
