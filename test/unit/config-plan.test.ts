// The config loader (tasks/core/config.ts) on real files, the path rules (paths.ts), the state
// parser (hosts.ts), and the purge/stage/switch/discard scripts — checked by their text and by
// running them with bash on a temp deploy root.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../tasks/config/load.js';
import { ConfigError } from '../../tasks/lib/errors.js';
import {
  checkRelativePath, COMPLETE, currentTarget, ENV_BUILD_PREFIX, envLinkTarget, FAILED_PREFIX, layout, linkFromRelease, RELEASE_META, releaseFiles,
  releaseOfCurrent, ROOT_MARK,
} from '../../tasks/lib/paths.js';
import { inspectScript, parseInspection } from '../../tasks/scripts/inspect.js';
import { selectHosts } from '../../tasks/fleet/select-hosts.js';
import { purgedIn, purgeScript } from '../../tasks/scripts/purge.js';
import { planPurge } from '../../tasks/release/rules.js';
import { switchScript } from '../../tasks/scripts/switch.js';
import { discardScript, stageScript } from '../../tasks/scripts/release.js';
import { stageCommand } from '../../tasks/scripts/hooks.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const scratch = mkdtempSync(path.join(tmpdir(), 'slipway-unit-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let counter = 0;
/** A fresh directory per call: imported .mjs/.ts configs are cached by URL, so never reuse a path. */
const freshDir = () => {
  const dir = path.join(scratch, `c${++counter}`);
  mkdirSync(dir);
  return dir;
};

const minimal = { application: 'hello', environments: { local: { hosts: [{ name: 'local', local: true, deployTo: 'deploy' }] } } };

async function load(config: unknown, { file = 'deploy.config.json', environment, files = {} }: { file?: string; environment?: string; files?: Record<string, string> } = {}) {
  const dir = freshDir();
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  writeFileSync(path.join(dir, file), typeof config === 'string' ? config : JSON.stringify(config));
  return { dir, config: await loadConfig({ configFile: path.join(dir, file), environment }) };
}

/** The ConfigError message (exit code 2), or fails the test. */
async function configError(config: unknown, options?: Parameters<typeof load>[1]): Promise<string> {
  try {
    await load(config, options);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).exitCode).toBe(2);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

const withHost = (host: Record<string, unknown>) => ({ ...minimal, environments: { local: { hosts: [{ name: 'local', deployTo: '/srv/app', ...host }] } } });

describe('loadConfig', () => {
  it('a minimal config gets every default', async () => {
    const { dir, config } = await load(minimal);
    expect(config).toMatchObject({
      application: 'hello', repository: dir, ref: 'HEAD', keepReleases: 5, dependencies: { type: 'none' }, shared: { files: [], dirs: [] },
      templates: { dir: path.join(dir, 'templates'), nginx: true, supervisor: true }, vars: {}, port: 8080, serverName: 'localhost',
      hooks: { beforeSwitch: [], afterSwitch: [] }, connectTimeoutSeconds: 10, environment: 'local', env: {}, projectRoot: dir,
    });
    expect(config.services).toBeUndefined();
    expect(config.healthcheck).toBeUndefined();
    // A local host's relative deployTo is relative to the config file.
    expect(config.hosts).toEqual([{ name: 'local', local: true, deployTo: path.join(dir, 'deploy'), roles: [] }]);
  });
  it('accepts .json, .mjs and .ts (with defineConfig) configs alike', async () => {
    expect((await load(minimal, { file: 'deploy.config.json' })).config.application).toBe('hello');
    expect((await load(`export default ${JSON.stringify(minimal)};`, { file: 'deploy.config.mjs' })).config.application).toBe('hello');
    const ts = `import { defineConfig } from ${JSON.stringify(path.join(ROOT, 'tasks/config/define-config.ts'))};\nconst keep: number = 3;\nexport default defineConfig({ ...${JSON.stringify(minimal)}, keepReleases: keep });\n`;
    expect((await load(ts, { file: 'deploy.config.ts' })).config.keepReleases).toBe(3);
  });
  it('--ref overrides the config ref; the environment overrides top-level settings', async () => {
    const dir = freshDir();
    const file = path.join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ ...minimal, ref: 'main', keepReleases: 3, environments: { local: { ...minimal.environments.local, keepReleases: 9 } } }));
    expect(await loadConfig({ configFile: file })).toMatchObject({ ref: 'main', keepReleases: 9 });
    expect(await loadConfig({ configFile: file, ref: 'v2' })).toMatchObject({ ref: 'v2' });
  });
  it('an unknown key is named with its full path', async () => {
    expect(await configError({ ...minimal, colour: 'blue' })).toContain('\n  colour: unknown key');
    expect(await configError(withHost({ adress: 'x', host: 'h' }))).toContain('environments.local.hosts.0.adress: unknown key');
    expect(await configError({ ...minimal, hooks: { beforeSwitch: [{ name: 'm', comands: ['x'] }] } })).toContain('hooks.beforeSwitch.0.comands: unknown key');
    expect(await configError({ ...minimal, environments: { local: { ...minimal.environments.local, keepRelease: 2 } } })).toContain('environments.local.keepRelease: unknown key');
  });
  it('a value of the wrong type is named with its path and the expected type', async () => {
    expect(await configError({ ...minimal, keepReleases: 'five' })).toContain('keepReleases: Invalid input: expected number, received string');
    expect(await configError(withHost({ host: 'h', port: '22' }))).toContain('environments.local.hosts.0.port: Invalid input: expected number, received string');
    expect(await configError({ ...minimal, dependencies: { type: 'ruby' } })).toMatch(/dependencies\.type: .*"node"/);
    expect(await configError({ ...minimal, environments: { local: { hosts: [{ name: 'x', local: true, deployTo: 5 }] } } })).toContain('environments.local.hosts.0.deployTo: Invalid input: expected string, received number');
  });
  it('every problem is reported at once, under the file name', async () => {
    const message = await configError({ ...minimal, application: 'Hello World', keepReleases: 0, colour: 1 });
    expect(message).toMatch(/^invalid config \S+deploy\.config\.json:\n/);
    for (const part of ['application: a name matching [a-z0-9][a-z0-9-]*', 'keepReleases: Too small', 'colour: unknown key']) expect(message).toContain(part);
  });
  it('a bad application name is refused', async () => {
    for (const application of ['Hello', 'hello world', '-hello', 'hello_app', '../x', '']) {
      expect(await configError({ ...minimal, application })).toContain('application: a name matching [a-z0-9][a-z0-9-]*');
    }
    expect(await configError({ environments: minimal.environments })).toContain('application: Invalid input: expected string, received undefined');
  });
  it('keepReleases must be a whole number of at least 1', async () => {
    for (const keepReleases of [0, -1]) expect(await configError({ ...minimal, keepReleases })).toMatch(/keepReleases: Too small: expected number to be >=1/);
    expect(await configError({ ...minimal, keepReleases: 1.5 })).toContain('keepReleases: Invalid input: expected int');
    expect((await load({ ...minimal, keepReleases: 1 })).config.keepReleases).toBe(1);
  });
  it('an unknown --env is refused with the list of environments', async () => {
    const two = { ...minimal, environments: { ...minimal.environments, production: { hosts: [{ name: 'web1', host: 'web1.internal', deployTo: '/srv/app' }] } } };
    expect(await configError(two, { environment: 'prod' })).toBe('unknown environment "prod"; environments: local, production');
    expect(await configError({ ...two, defaultEnvironment: 'staging' })).toBe('unknown environment "staging"; environments: local, production');
    expect((await load(two, { environment: 'production' })).config.hosts.map((h) => h.name)).toEqual(['web1']);
  });
  it('a host with both local and host is refused, naming the host entry', async () => {
    expect(await configError(withHost({ local: true, host: 'web1' }))).toContain('environments.local.hosts.0: give either local: true or host, not both');
    expect(await configError(withHost({}))).toContain('environments.local.hosts.0: needs host (an address or ~/.ssh/config alias) or local: true');
    expect(await configError(withHost({ host: 'web1', deployTo: 'relative/dir' }))).toContain('environments.local.hosts.0.deployTo: must be an absolute path on the host, got "relative/dir"');
    const twice = { ...minimal, environments: { local: { hosts: [{ name: 'a', local: true, deployTo: 'x' }, { name: 'a', local: true, deployTo: 'y' }] } } };
    expect(await configError(twice)).toContain('host name "a" appears twice');
    expect(await configError({ ...minimal, environments: { local: { hosts: [] } } })).toContain('environments.local.hosts: Too small');
  });
  it('.env and .env.<environment> values are loaded into config.env (the latter wins)', async () => {
    const files = { '.env': 'SLIPWAY_UNIT_A=alpha-value\nSLIPWAY_UNIT_B=from-env\n# comment\n', '.env.local': 'SLIPWAY_UNIT_B=beta-value\n' };
    const { config } = await load(minimal, { files });
    expect(config.env).toEqual({ SLIPWAY_UNIT_A: 'alpha-value', SLIPWAY_UNIT_B: 'beta-value' });
    const explicit = await load(minimal, { files, environment: 'local' });
    expect(explicit.config.env).toEqual({ SLIPWAY_UNIT_A: 'alpha-value', SLIPWAY_UNIT_B: 'beta-value' });
    expect((await load(minimal)).config.env).toEqual({});
  });
  it('a broken file is a config error: bad JSON, a missing file, an unknown extension', async () => {
    expect(await configError('{ nope')).toMatch(/not valid JSON/);
    expect(await configError(minimal, { file: 'deploy.config.yaml' })).toMatch(/expected a \.ts, \.mjs or \.json file/);
    await expect(loadConfig({ configFile: path.join(scratch, 'missing.json') })).rejects.toThrow(/config file not found: .*missing\.json/);
  });
});

describe('paths', () => {
  it('layout is Capistrano\'s', () => {
    const p = layout('/srv/app');
    expect([p.releases, p.current, p.shared, p.envs, p.cache, p.tmp, p.revisions]).toEqual(
      ['/srv/app/releases', '/srv/app/current', '/srv/app/shared', '/srv/app/envs', '/srv/app/cache', '/srv/app/tmp', '/srv/app/revisions.log'],
    );
    expect(p.release('X')).toBe('/srv/app/releases/X');
    expect(p.staging('X')).toBe('/srv/app/tmp/X');
    expect(p.env('node-1')).toBe('/srv/app/envs/node-1');
  });
  it('every other deploy-root path comes from layout too: the locks, the root mark, the switch link, shared, tmp, envs', () => {
    const p = layout('/srv/app');
    expect([p.lock, p.lockOwner, p.lockGuard, p.rootMark, p.currentNext, p.sharedEnv]).toEqual([
      '/srv/app/deploy.lock', '/srv/app/deploy.lock.owner', '/srv/app/.deploy.lock.guard', `/srv/app/${ROOT_MARK}`, '/srv/app/.current.next',
      '/srv/app/shared/.env',
    ]);
    expect(ROOT_MARK).toBe('.slipway-root');
    expect(p.sharedItem('config/app.json')).toBe('/srv/app/shared/config/app.json');
    expect([p.archive('X'), p.failed('X'), p.purging('X'), p.purgingEnv('k')]).toEqual(
      ['/srv/app/tmp/X.tar.gz', '/srv/app/tmp/failed-X', '/srv/app/tmp/purge-X', '/srv/app/tmp/purge-env-k'],
    );
    expect([p.envBuild('k'), p.toolCache('npm'), p.toolCache('pip')]).toEqual(['/srv/app/envs/.build-k', '/srv/app/cache/npm', '/srv/app/cache/pip']);
    expect([p.serviceBackup('site', 'prev'), p.serviceBackup('program', 'none')]).toEqual(
      ['/srv/app/service-backups/site.prev', '/srv/app/service-backups/program.none'],
    );
    // The glob stageScript cleans with names exactly what failed() and envBuild() make.
    expect(p.failed('X')).toBe(`${p.tmp}/${FAILED_PREFIX}X`);
    expect(p.envBuild('k')).toBe(`${p.envs}/${ENV_BUILD_PREFIX}k`);
  });
  it('releaseFiles names the files slipway keeps inside a release', () => {
    const f = releaseFiles('/srv/app/releases/X');
    expect([f.slipway, f.meta, f.dotenv, f.rendered('nginx.conf'), f.nginxCheck, f.env]).toEqual([
      '/srv/app/releases/X/.slipway', `/srv/app/releases/X/${RELEASE_META}`, '/srv/app/releases/X/.slipway/dotenv',
      '/srv/app/releases/X/.slipway/nginx.conf', '/srv/app/releases/X/.slipway/nginx-check', '/srv/app/releases/X/.env',
    ]);
    expect(RELEASE_META).toBe('.slipway/release.json');
    expect(COMPLETE).toBe('.complete');
  });
  it('current points to releases/<id>, relative, and reads back to the id', () => {
    expect(currentTarget('X')).toBe('releases/X');
    expect(releaseOfCurrent(currentTarget('X'))).toBe('X');
    expect(releaseOfCurrent('releases/X/')).toBe('X');
  });
  it('the release\'s links to shared/.env and to its environment climb out of releases/<id>', () => {
    expect(linkFromRelease('.env', 'shared')).toBe('../../shared/.env');
    expect(envLinkTarget('k', 'node_modules')).toBe('../../envs/k/node_modules');
    expect(envLinkTarget('k')).toBe('../../envs/k');
    expect(path.posix.resolve('/srv/app/releases/X', envLinkTarget('k', 'node_modules'), '..')).toBe('/srv/app/envs/k');
  });
  it('linkFromRelease climbs out of releases/<id>/<item> to the shared copy', () => {
    expect(linkFromRelease('logs', 'shared')).toBe('../../shared/logs');
    expect(linkFromRelease('config/app.json', 'shared')).toBe('../../../shared/config/app.json');
    expect(linkFromRelease('a/b/c', 'shared')).toBe('../../../../shared/a/b/c');
    // The link resolves to <deployTo>/shared/<item> from where it sits.
    for (const item of ['logs', 'config/app.json']) {
      const at = path.posix.join('/srv/app/releases/X', item);
      expect(path.posix.resolve(path.posix.dirname(at), linkFromRelease(item, 'shared'))).toBe(`/srv/app/shared/${item}`);
    }
  });
  it('checkRelativePath refuses paths that leave the release', () => {
    for (const bad of ['../x', '/etc', '/etc/passwd', '.', '', 'a/../../b', '..', 'x/..', 'a\0b']) {
      expect(() => checkRelativePath(bad, 'shared.dirs'), JSON.stringify(bad)).toThrow(/shared\.dirs: ".*" must be a path inside the release/);
    }
  });
  it('checkRelativePath normalises good ones', () => {
    expect(checkRelativePath('logs', 'x')).toBe('logs');
    expect(checkRelativePath('logs/', 'x')).toBe('logs');
    expect(checkRelativePath('config/./app.json', 'x')).toBe('config/app.json');
    expect(checkRelativePath('a/b/../c', 'x')).toBe('a/c');
  });
});

describe('selectHosts', () => {
  const hosts = [
    { name: 'web1', roles: ['web'], deployTo: '/a', host: 'x' },
    { name: 'db1', roles: ['db'], deployTo: '/a', host: 'y' },
  ];
  it('by name and by role; unknown ones are config errors listing what exists', () => {
    expect(selectHosts(hosts).map((h) => h.name)).toEqual(['web1', 'db1']);
    expect(selectHosts(hosts, ['db1']).map((h) => h.name)).toEqual(['db1']);
    expect(selectHosts(hosts, undefined, ['web']).map((h) => h.name)).toEqual(['web1']);
    expect(() => selectHosts(hosts, ['web9'])).toThrow(/--hosts: unknown host "web9"; hosts: web1, db1/);
    expect(() => selectHosts(hosts, undefined, ['cache'])).toThrow(/--roles: no host has role "cache"; roles: web, db/);
  });
});

// ------------------------------------------------------------------------------------------------
const A = '2026.01.01-00.00.01-aaaaaaa';
const B = '2026.01.02-00.00.01-bbbbbbb';
const C = '2026.01.03-00.00.01-ccccccc';
const D = '2026.01.04-00.00.01-ddddddd';

const SAMPLE = [
  'motd: welcome', // a login banner or other noise is ignored
  '@@now 1767225600',
  `@@current releases/${C}/`,
  `@@release ${B}`, `@@release ${A}`, `@@release ${C}`, `@@release ${D}`, '@@release not-a-release', '@@release ../etc',
  `@@meta ${A} {"id":"${A}","ref":"main","commit":"${'a'.repeat(40)}","deployer":"me@box","deployedAt":"2026-01-01T00:00:01Z","status":"ok","envKey":"node-1"}`,
  `@@meta ${B} {"id":"${B}","envKey":"node-2","status":"bad","reason":"health check failed"}`,
  `@@meta ${C} {"id":"${C}","envKey":"node-2","status":"ok"}`,
  `@@meta ${D} {"id":"${D}","envKey":"node-3","sta`, // torn metadata: listed, without details
  '@@env node-1', '@@env node-2', '@@env node-3',
  '@@node v20.19.0', '@@python Python 3.11.2', '@@platform Linux x86_64', '@@nginx ', '@@writable yes',
].join('\n');

describe('parseInspection', () => {
  it('reads what the inspect script prints, ignoring noise, bad names and torn metadata', () => {
    const state = parseInspection(SAMPLE);
    expect(state).toMatchObject({ now: 1767225600, live: C, releases: [A, B, C, D], envs: ['node-1', 'node-2', 'node-3'], nginx: null, writable: true });
    expect(state.runtime).toEqual({ node: 'v20.19.0', python: 'Python 3.11.2', platform: 'Linux x86_64' });
    expect(state.meta[A]).toMatchObject({ ref: 'main', status: 'ok', envKey: 'node-1' });
    expect(state.meta[B]).toMatchObject({ status: 'bad', reason: 'health check failed' });
    expect(state.meta[D]).toBeUndefined();
  });
  it('an empty deploy root: nothing live, nothing there, not writable', () => {
    expect(parseInspection('@@now 5\n')).toMatchObject({ now: 5, live: null, releases: [], envs: [], meta: {}, writable: false, nginx: null });
  });
  it('round trip: the real inspect script on a real deploy root, parsed', () => {
    const root = path.join(freshDir(), 'deploy root');
    for (const id of [A, B]) mkdirSync(path.join(root, 'releases', id, '.slipway'), { recursive: true });
    writeFileSync(path.join(root, 'releases', A, '.slipway/release.json'), JSON.stringify({ id: A, status: 'ok', envKey: 'node-9' }) + '\n');
    mkdirSync(path.join(root, 'releases', 'junk'));
    mkdirSync(path.join(root, 'envs/node-9'), { recursive: true });
    writeFileSync(path.join(root, 'envs/node-9/.complete'), '');
    mkdirSync(path.join(root, 'envs/node-half'), { recursive: true }); // no .complete: not an environment
    execFileSync('ln', ['-s', `releases/${B}`, path.join(root, 'current')]);
    const state = parseInspection(execFileSync('bash', ['-c', inspectScript(root, 'node').text], { encoding: 'utf8' }));
    expect(state).toMatchObject({ live: B, releases: [A, B], envs: ['node-9'], writable: true });
    expect(state.meta[A]).toMatchObject({ envKey: 'node-9' });
    expect(state.runtime.node).toBe(process.version);
    expect(Math.abs(state.now - Date.now() / 1000)).toBeLessThan(60);
  });
});

describe('planPurge', () => {
  it('removes releases beyond keep (bad ones first) and the environments no kept release uses', () => {
    // keep 1: D is the newest good release, C stays because it is live, B is bad and goes first.
    const state = parseInspection(SAMPLE.replace(`"envKey":"node-3","sta`, `"envKey":"node-3","status":"ok"}`));
    expect(planPurge(state, 1)).toEqual({ releases: [A, B], envs: ['node-1'] });
    expect(planPurge(state, 2)).toEqual({ releases: [A, B], envs: ['node-1'] });
    expect(planPurge(state, 10)).toEqual({ releases: [B], envs: [] });
  });
  it('keeps every environment when a kept release has no metadata (it might use any)', () => {
    expect(planPurge(parseInspection(SAMPLE), 1)).toEqual({ releases: [A, B], envs: [] });
  });
  it('an environment nothing uses any more is removed even when no release is', () => {
    const state = parseInspection(`@@current releases/${A}\n@@release ${A}\n@@meta ${A} {"id":"${A}","envKey":"node-2","status":"ok"}\n@@env node-1\n@@env node-2\n`);
    expect(planPurge(state, 5)).toEqual({ releases: [], envs: ['node-1'] });
  });
});

// ------------------------------------------------------------------------------------------------
// The scripts, run for real with bash on a temp deploy root whose path has a space and a quote.

function bash(command: string, input?: Buffer) {
  const result = spawnSync('bash', ['-c', command], { input, encoding: 'buffer' });
  return { code: result.status, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

function makeArchive(files: Record<string, string>) {
  const src = freshDir();
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(src, name), text);
  const archive = execFileSync('tar', ['-czf', '-', '-C', src, '.']);
  return { archive, sha256: createHash('sha256').update(archive).digest('hex') };
}

describe('stageScript (upload)', () => {
  const marker = path.join(scratch, 'stage-pwned');
  const hostile = `it's $(touch ${marker}) \`touch ${marker}\`\n`;

  it('verifies the sha256 before extracting, stages under tmp/, quotes every path and value', () => {
    const spec = { deployTo: "/srv/my app's", id: A, sha256: 'f'.repeat(64), bytes: 1234, files: [{ name: 'nginx.conf', content: hostile, secret: false }], shared: { dirs: ['logs'], files: ['config/app.json'] } };
    const text = stageScript(spec).text;
    expect(text.split('\n')[0]).toBe('set -eu');
    expect(text.indexOf('sha256sum -c')).toBeGreaterThan(-1);
    expect(text.indexOf('sha256sum -c')).toBeLessThan(text.indexOf('tar -xzf'));
    expect(text).toContain(`mkdir '/srv/my app'\\''s/tmp/${A}'`);
    expect(text).not.toContain(`/releases/${A}`); // nothing appears under releases/ while staging
    // Rendered files come on stdin after the archive, never on the command line (where `ps` shows them).
    expect(text).toContain(`head -c 1234 > '/srv/my app'\\''s/tmp/${A}.tar.gz'`);
    expect(text).toContain(`head -c ${Buffer.byteLength(hostile)} > '/srv/my app'\\''s/tmp/${A}/.slipway/nginx.conf'`);
    expect(text).not.toContain('touch');
    expect(text).toContain(`ln -s ../../shared/logs '/srv/my app'\\''s/tmp/${A}/logs'`);
    expect(text).toContain(`ln -s ../../../shared/config/app.json '/srv/my app'\\''s/tmp/${A}/config/app.json'`);
  });

  it('run for real: extracts, writes files literally, links shared items, leaves failed-* work alone', () => {
    const root = path.join(freshDir(), "my app's root");
    mkdirSync(path.join(root, 'tmp/failed-x'), { recursive: true });
    mkdirSync(path.join(root, 'tmp/leftover-of-a-dead-run'), { recursive: true });
    const { archive, sha256 } = makeArchive({ 'server.js': 'console.log(1)\n' });
    const secret = 'token=planted-secret\n';
    const files = [{ name: 'nginx.conf', content: hostile, secret: false }, { name: 'app.env', content: secret, secret: true }];
    const spec = { deployTo: root, id: A, sha256, bytes: archive.length, files, shared: { dirs: ['logs'], files: ['config/app.json'] } };
    const result = bash(stageScript(spec).text, Buffer.concat([archive, Buffer.from(hostile), Buffer.from(secret)]));
    expect(result.code, result.stderr).toBe(0);
    const staged = path.join(root, 'tmp', A);
    expect(readFileSync(path.join(staged, 'server.js'), 'utf8')).toBe('console.log(1)\n');
    expect(readFileSync(path.join(staged, '.slipway/nginx.conf'), 'utf8')).toBe(hostile);
    expect(lstatSync(path.join(staged, '.slipway/nginx.conf')).mode & 0o777).toBe(0o644);
    expect(readFileSync(path.join(staged, '.slipway/app.env'), 'utf8')).toBe(secret);
    expect(lstatSync(path.join(staged, '.slipway/app.env')).mode & 0o777).toBe(0o600); // it holds a secret
    expect(existsSync(marker)).toBe(false);
    expect(readlinkSync(path.join(staged, 'logs'))).toBe('../../shared/logs');
    expect(readlinkSync(path.join(staged, 'config/app.json'))).toBe('../../../shared/config/app.json');
    expect(lstatSync(path.join(root, 'shared/config/app.json')).mode & 0o777).toBe(0o600); // created empty and private
    expect(readdirSync(path.join(root, 'tmp')).sort()).toEqual([A, 'failed-x']);
    expect(readdirSync(path.join(root, 'releases'))).toEqual([]);
  });

  it('run for real with a wrong checksum: exits 1 saying so, nothing staged', () => {
    const root = path.join(freshDir(), 'root');
    const { archive } = makeArchive({ 'server.js': 'x' });
    const result = bash(stageScript({ deployTo: root, id: A, sha256: '0'.repeat(64), bytes: archive.length, files: [], shared: { dirs: [], files: [] } }).text, archive);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('upload corrupted: sha256 of the received archive does not match');
    expect(readdirSync(path.join(root, 'tmp'))).toEqual([]);
  });

  it('run for real with a rendered file cut short: exits 1 saying so, nothing staged', () => {
    const root = path.join(freshDir(), 'root');
    const { archive, sha256 } = makeArchive({ 'server.js': 'x' });
    const files = [{ name: 'nginx.conf', content: 'server { listen 8080; }\n', secret: false }];
    const spec = { deployTo: root, id: A, sha256, bytes: archive.length, files, shared: { dirs: [], files: [] } };
    const result = bash(stageScript(spec).text, Buffer.concat([archive, Buffer.from('server { lis')]));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('upload corrupted: a rendered file arrived incomplete');
    expect(readdirSync(path.join(root, 'tmp'))).toEqual([]);
  });
});

describe('stageCommand (hooks)', () => {
  it('passes the stage env on stdin, never in the script, and the commands see it literally', () => {
    const dir = freshDir();
    const value = `pa55 'word'\n$(touch ${path.join(dir, 'pwned')})`;
    const { script, stdin } = stageCommand({ name: 'env', commands: ['printf "%s|%s" "$TOKEN" "$OTHER" > out.txt'], env: { TOKEN: value, OTHER: 'two' } }, dir);
    expect(script.text).not.toContain('pa55');
    const result = bash(script.text, stdin);
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(path.join(dir, 'out.txt'), 'utf8')).toBe(`${value}|two`);
    expect(existsSync(path.join(dir, 'pwned'))).toBe(false);
  });
});

describe('switchScript', () => {
  it('swaps current with one mv -T of a fresh relative link, and logs one line', () => {
    const text = switchScript('/srv/my app', A, 'line one\nline two').text;
    expect(text).toContain(`ln -sfn releases/${A} '/srv/my app/.current.next'`);
    expect(text).toContain(`mv -T '/srv/my app/.current.next' '/srv/my app/current'`);
    expect(text).toContain(`printf '%s\\n' 'line one line two' >> '/srv/my app/revisions.log'`);
    expect(text.indexOf('ln -sfn')).toBeLessThan(text.indexOf('mv -T'));
  });
  it('run for real: current becomes a relative link, revisions.log grows; a missing release changes nothing', () => {
    const root = path.join(freshDir(), 'my root');
    for (const id of [A, B]) mkdirSync(path.join(root, 'releases', id), { recursive: true });
    expect(bash(switchScript(root, A, `deploy ${A}`).text).code).toBe(0);
    expect(bash(switchScript(root, B, `deploy ${B}`).text).code).toBe(0);
    expect(readlinkSync(path.join(root, 'current'))).toBe(`releases/${B}`);
    expect(readFileSync(path.join(root, 'revisions.log'), 'utf8')).toBe(`deploy ${A}\ndeploy ${B}\n`);
    const missing = bash(switchScript(root, C, `deploy ${C}`).text);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`release ${C} is not in ${root}/releases`);
    expect(readlinkSync(path.join(root, 'current'))).toBe(`releases/${B}`);
    expect(readFileSync(path.join(root, 'revisions.log'), 'utf8').split('\n').filter(Boolean)).toHaveLength(2);
    expect(existsSync(path.join(root, '.current.next'))).toBe(false);
  });
});

describe('purgeScript and discardScript, run for real', () => {
  it('purge renames each release out of releases/ before deleting it, and says what it removed', () => {
    const root = path.join(freshDir(), 'root');
    for (const id of [A, B, C]) mkdirSync(path.join(root, 'releases', id), { recursive: true });
    mkdirSync(path.join(root, 'envs/node-1'), { recursive: true });
    mkdirSync(path.join(root, 'tmp'));
    const text = purgeScript(root, { releases: [A, B], envs: ['node-1'] }).text;
    expect(text).toContain(`mv -T ${root}/releases/${A} ${root}/tmp/purge-${A}`);
    const result = bash(text);
    expect(result.code, result.stderr).toBe(0);
    expect(purgedIn(result.stdout)).toEqual([A, B]);
    expect(readdirSync(path.join(root, 'releases'))).toEqual([C]);
    expect(readdirSync(path.join(root, 'envs'))).toEqual([]);
    expect(readdirSync(path.join(root, 'tmp'))).toEqual([]);
  });
  it('purge keeps a release a running process works in', () => {
    const root = path.join(freshDir(), 'root');
    mkdirSync(path.join(root, 'releases', A), { recursive: true });
    mkdirSync(path.join(root, 'tmp'));
    const result = bash(`(cd ${root}/releases/${A} && sleep 5) & pid=$!; sleep 0.2; ${purgeScript(root, { releases: [A], envs: [] }).text}; kill $pid`);
    expect(result.stdout).toContain(`kept ${A}: a running process works in it`);
    expect(readdirSync(path.join(root, 'releases'))).toEqual([A]);
  });
  it('purge keeps a release a running process works in a folder of, and removes the one beside it', () => {
    const root = path.join(freshDir(), 'root');
    for (const id of [A, B]) mkdirSync(path.join(root, 'releases', id, 'logs'), { recursive: true });
    mkdirSync(path.join(root, 'tmp'));
    const result = bash(`(cd ${root}/releases/${A}/logs && sleep 5) & pid=$!; sleep 0.2; ${purgeScript(root, { releases: [A, B], envs: [] }).text}; kill $pid`);
    expect(result.stdout).toContain(`kept ${A}: a running process works in it`);
    expect(purgedIn(result.stdout)).toEqual([B]);
    expect(readdirSync(path.join(root, 'releases'))).toEqual([A]);
  });
  it('discard removes a release that never went live, never the live one; --keep-failed moves it aside', () => {
    const root = path.join(freshDir(), 'root');
    for (const id of [A, B]) mkdirSync(path.join(root, 'releases', id), { recursive: true });
    mkdirSync(path.join(root, 'tmp', C), { recursive: true });
    execFileSync('ln', ['-s', `releases/${A}`, path.join(root, 'current')]);
    expect(bash(discardScript(root, A, false).text).code).toBe(0); // live: untouched
    expect(bash(discardScript(root, B, false).text).code).toBe(0); // published, never live: gone
    expect(readdirSync(path.join(root, 'releases'))).toEqual([A]);
    const kept = bash(discardScript(root, C, true).text);
    expect(kept.stdout.trim()).toBe(`${root}/tmp/failed-${C}`);
    expect(readdirSync(path.join(root, 'tmp'))).toEqual([`failed-${C}`]);
  });
});

describe('shared paths that only start with dots', () => {
  it('accepts names like ..data and .cache while refusing ../x', async () => {
    const { checkRelativePath } = await import('../../tasks/lib/paths.js');
    expect(checkRelativePath('..data', 'shared.dirs')).toBe('..data');
    expect(checkRelativePath('.cache/x', 'shared.dirs')).toBe('.cache/x');
    expect(() => checkRelativePath('../x', 'shared.dirs')).toThrow(/must be a path inside the release/);
    expect(() => checkRelativePath('..', 'shared.dirs')).toThrow(/must be a path inside the release/);
  });
});
