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
