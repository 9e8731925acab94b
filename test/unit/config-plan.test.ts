// Config validation messages, the state parser, and purge/stage/switch plans.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../tasks/core/config.js';
import { checkRelativePath, linkFromRelease } from '../../tasks/core/paths.js';
import { parseInspection } from '../../tasks/hosts.js';
import { planPurge } from '../../tasks/purge.js';
import { switchScript } from '../../tasks/switch.js';
import { stageScript } from '../../tasks/upload.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slipway-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const minimal = { application: 'hello', environments: { local: { hosts: [{ name: 'local', local: true, deployTo: 'deploy' }] } } };

async function load(config: unknown, file = 'deploy.config.json', environment?: string) {
  writeFileSync(path.join(dir, file), typeof config === 'string' ? config : JSON.stringify(config));
  return loadConfig({ configFile: path.join(dir, file), environment });
}
const messageOf = (p: Promise<unknown>) => p.then(() => '', (e: Error & { exitCode?: number }) => `${e.exitCode}:${e.message}`);

describe('config', () => {
  it('a minimal config gets the defaults', async () => {
    const config = await load(minimal);
    expect(config).toMatchObject({ ref: 'HEAD', keepReleases: 5, dependencies: { type: 'none' }, environment: 'local', repository: dir });
    expect(config.hosts[0].deployTo).toBe(path.join(dir, 'deploy'));
  });
  it('names every bad key path with what was expected, exit code 2', async () => {
    const message = await messageOf(load({ ...minimal, application: 'Hello World', keepReleases: 0, colour: 1, dependencies: { type: 'ruby' }, environments: { local: { hosts: [{ name: 'x', deployTo: 5 }] } } }));
    expect(message).toMatch(/^2:invalid config/);
    for (const part of ['application: a name matching', 'keepReleases:', 'colour: unknown key', 'dependencies.type:', 'environments.local.hosts.0.deployTo:']) expect(message).toContain(part);
  });
  it('a missing required key is named', async () => {
    expect(await messageOf(load({ environments: minimal.environments }))).toContain('application:');
  });
  it('host entries: local or host, not both; absolute deployTo over SSH', async () => {
    expect(await messageOf(load({ ...minimal, environments: { local: { hosts: [{ name: 'a', local: true, host: 'x', deployTo: '/d' }] } } }))).toContain('either local: true or host');
    expect(await messageOf(load({ ...minimal, environments: { local: { hosts: [{ name: 'a', host: 'x', deployTo: 'rel' }] } } }))).toContain('must be an absolute path');
  });
  it('an unknown --env lists the environments', async () => {
    expect(await messageOf(load(minimal, 'deploy.config.json', 'prod'))).toContain('unknown environment "prod"; environments: local');
  });
  it('per-environment overrides win; .env values are loaded', async () => {
    writeFileSync(path.join(dir, '.env'), 'SECRET_A=alpha-value\n');
    writeFileSync(path.join(dir, '.env.local'), 'SECRET_B=beta-value\n');
    const config = await load({ ...minimal, keepReleases: 3, environments: { local: { ...minimal.environments.local, keepReleases: 9 } } });
    expect(config.keepReleases).toBe(9);
    expect(config.env).toMatchObject({ SECRET_A: 'alpha-value', SECRET_B: 'beta-value' });
  });
  it('.mjs configs are accepted; other extensions are refused', async () => {
    expect((await load(`export default ${JSON.stringify(minimal)};`, 'c.mjs')).application).toBe('hello');
    expect(await messageOf(load('x', 'c.yaml'))).toContain('expected a .ts, .mjs or .json file');
  });
});

describe('paths', () => {
  it('links shared items relative to the release', () => {
    expect(linkFromRelease('logs', 'shared')).toBe('../../shared/logs');
    expect(linkFromRelease('config/app.json', 'shared')).toBe('../../../shared/config/app.json');
  });
  it('refuses paths outside the release', () => {
    for (const bad of ['../x', '/etc', '.', 'a/../../b']) expect(() => checkRelativePath(bad, 'shared.dirs')).toThrow(/must be a path inside the release/);
  });
});

describe('state and plans', () => {
  const a = '2026.01.01-00.00.01-aaaaaaa';
  const b = '2026.01.02-00.00.01-bbbbbbb';
  const c = '2026.01.03-00.00.01-ccccccc';
  const output = [
    '@@now 1767225600', `@@current releases/${c}`, `@@release ${a}`, `@@release ${b}`, `@@release ${c}`, '@@release not-a-release',
    `@@meta ${a} {"id":"${a}","envKey":"node-1","status":"ok"}`, `@@meta ${b} {"id":"${b}","envKey":"node-2","status":"bad"}`, `@@meta ${c} {"id":"${c}","envKey":"node-2","status":"ok"}`,
    '@@env node-1', '@@env node-2', '@@node v20.1.0', '@@python Python 3.11.2', '@@platform Linux x86_64', '@@nginx /usr/sbin/nginx', '@@writable yes',
  ].join('\n');
  it('parses what the inspect script prints', () => {
    const state = parseInspection(output);
    expect(state).toMatchObject({ now: 1767225600, live: c, releases: [a, b, c], envs: ['node-1', 'node-2'], nginx: '/usr/sbin/nginx', writable: true });
    expect(state.runtime.node).toBe('v20.1.0');
    expect(state.meta[b].status).toBe('bad');
  });
  it('purge drops bad releases first and environments no kept release uses', () => {
    expect(planPurge(parseInspection(output), 1)).toEqual({ releases: [a, b], envs: ['node-1'] });
  });
  it('the stage script verifies the checksum before extracting; the switch is one mv -T of a relative link', () => {
    const stage = stageScript({ deployTo: '/srv/app', id: a, sha256: 'f'.repeat(64), files: [{ name: 'nginx.conf', content: "it's $(x)" }], shared: { dirs: ['logs'], files: [] } }).text;
    expect(stage.indexOf('sha256sum -c')).toBeLessThan(stage.indexOf('tar -xzf'));
    expect(stage).toContain(`printf '%s' 'it'\\''s $(x)' > /srv/app/tmp/${a}/.slipway/nginx.conf`);
    const sw = switchScript('/srv/my app', a, "line with 'quote'").text;
    expect(sw).toContain(`ln -sfn releases/${a} '/srv/my app/.current.next'`);
    expect(sw).toContain(`mv -T '/srv/my app/.current.next' '/srv/my app/current'`);
  });
});
