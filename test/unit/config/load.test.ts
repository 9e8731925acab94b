// The config loader (tasks/config/load.ts) on real files: every format, every error at once with its key path,
// the health check's keys.
import { mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../tasks/config/load.js';
import { ConfigError } from '../../../tasks/lib/errors.js';
import { scratchDir } from '../../helpers/unit.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const { scratch, freshDir } = scratchDir('unit');
const minimal = {
  application: 'hello',
  environments: { local: { hosts: [{ name: 'local', local: true, deployTo: 'deploy' }] } },
};

async function load(
  config: unknown,
  {
    file = 'deploy.config.json',
    environment,
    files = {},
  }: { file?: string; environment?: string; files?: Record<string, string> } = {},
) {
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

const withHost = (host: Record<string, unknown>) => ({
  ...minimal,
  environments: { local: { hosts: [{ name: 'local', deployTo: '/srv/app', ...host }] } },
});

describe('loadConfig', () => {
  it('a minimal config gets every default', async () => {
    const { dir, config } = await load(minimal);
    expect(config).toMatchObject({
      application: 'hello',
      repository: dir,
      ref: 'HEAD',
      keepReleases: 5,
      dependencies: { type: 'none' },
      shared: { files: [], dirs: [] },
      templates: { dir: path.join(dir, 'templates'), nginx: true, supervisor: true },
      vars: {},
      port: 8080,
      serverName: 'localhost',
      hooks: { beforeSwitch: [], afterSwitch: [], onSuccess: [], onFailure: [] },
      connectTimeoutSeconds: 10,
      environment: 'local',
      env: {},
      projectRoot: dir,
      cutover: { strategy: 'restart' },
    });
    expect(config.services).toBeUndefined();
    expect(config.healthcheck).toBeUndefined();
    // A local host's relative deployTo is relative to the config file.
    expect(config.hosts).toEqual([{ name: 'local', local: true, deployTo: path.join(dir, 'deploy'), roles: [] }]);
  });
  it('accepts .json, .mjs and .ts (with defineConfig) configs alike', async () => {
    expect((await load(minimal, { file: 'deploy.config.json' })).config.application).toBe('hello');
    expect(
      (await load(`export default ${JSON.stringify(minimal)};`, { file: 'deploy.config.mjs' })).config.application,
    ).toBe('hello');
    const defineConfigModule = JSON.stringify(path.join(ROOT, 'tasks/config/define-config.ts'));
    const ts =
      `import { defineConfig } from ${defineConfigModule};\nconst keep: number = 3;\n` +
      `export default defineConfig({ ...${JSON.stringify(minimal)}, keepReleases: keep });\n`;
    expect((await load(ts, { file: 'deploy.config.ts' })).config.keepReleases).toBe(3);
  });
  it('--ref overrides the config ref; the environment overrides top-level settings', async () => {
    const dir = freshDir();
    const file = path.join(dir, 'c.json');
    writeFileSync(
      file,
      JSON.stringify({
        ...minimal,
        ref: 'main',
        keepReleases: 3,
        environments: { local: { ...minimal.environments.local, keepReleases: 9 } },
      }),
    );
    expect(await loadConfig({ configFile: file })).toMatchObject({ ref: 'main', keepReleases: 9 });
    expect(await loadConfig({ configFile: file, ref: 'v2' })).toMatchObject({ ref: 'v2' });
  });
  it('an unknown key is named with its full path', async () => {
    expect(await configError({ ...minimal, colour: 'blue' })).toContain('\n  colour: unknown key');
    expect(await configError(withHost({ adress: 'x', host: 'h' }))).toContain(
      'environments.local.hosts.0.adress: unknown key',
    );
    expect(await configError({ ...minimal, hooks: { beforeSwitch: [{ name: 'm', comands: ['x'] }] } })).toContain(
      'hooks.beforeSwitch.0.comands: unknown key',
    );
    expect(
      await configError({ ...minimal, environments: { local: { ...minimal.environments.local, keepRelease: 2 } } }),
    ).toContain('environments.local.keepRelease: unknown key');
  });
  it('a value of the wrong type is named with its path and the expected type', async () => {
    expect(await configError({ ...minimal, keepReleases: 'five' })).toContain(
      'keepReleases: Invalid input: expected number, received string',
    );
    expect(await configError(withHost({ host: 'h', port: '22' }))).toContain(
      'environments.local.hosts.0.port: Invalid input: expected number, received string',
    );
    expect(await configError({ ...minimal, dependencies: { type: 'ruby' } })).toMatch(/dependencies\.type: .*"node"/);
    expect(
      await configError({ ...minimal, environments: { local: { hosts: [{ name: 'x', local: true, deployTo: 5 }] } } }),
    ).toContain('environments.local.hosts.0.deployTo: Invalid input: expected string, received number');
  });
  it('every problem is reported at once, under the file name', async () => {
    const message = await configError({ ...minimal, application: 'Hello World', keepReleases: 0, colour: 1 });
    expect(message).toMatch(/^invalid config \S+deploy\.config\.json:\n/);
    for (const part of [
      'application: a name matching [a-z0-9][a-z0-9-]*',
      'keepReleases: Too small',
      'colour: unknown key',
    ])
      expect(message).toContain(part);
  });
  it('a bad application name is refused', async () => {
    for (const application of ['Hello', 'hello world', '-hello', 'hello_app', '../x', '']) {
      expect(await configError({ ...minimal, application })).toContain(
        'application: a name matching [a-z0-9][a-z0-9-]*',
      );
    }
    expect(await configError({ environments: minimal.environments })).toContain(
      'application: Invalid input: expected string, received undefined',
    );
  });
  it('keepReleases must be a whole number of at least 1', async () => {
    for (const keepReleases of [0, -1])
      expect(await configError({ ...minimal, keepReleases })).toMatch(
        /keepReleases: Too small: expected number to be >=1/,
      );
    expect(await configError({ ...minimal, keepReleases: 1.5 })).toContain('keepReleases: Invalid input: expected int');
    expect((await load({ ...minimal, keepReleases: 1 })).config.keepReleases).toBe(1);
  });
  it('an unknown --env is refused with the list of environments', async () => {
    const two = {
      ...minimal,
      environments: {
        ...minimal.environments,
        production: { hosts: [{ name: 'web1', host: 'web1.internal', deployTo: '/srv/app' }] },
      },
    };
    expect(await configError(two, { environment: 'prod' })).toBe(
      'unknown environment "prod"; environments: local, production',
    );
    expect(await configError({ ...two, defaultEnvironment: 'staging' })).toBe(
      'unknown environment "staging"; environments: local, production',
    );
    expect((await load(two, { environment: 'production' })).config.hosts.map((h) => h.name)).toEqual(['web1']);
  });
  it('a host with both local and host is refused, naming the host entry', async () => {
    expect(await configError(withHost({ local: true, host: 'web1' }))).toContain(
      'environments.local.hosts.0: give either local: true or host, not both',
    );
    expect(await configError(withHost({}))).toContain(
      'environments.local.hosts.0: needs host (an address or ~/.ssh/config alias) or local: true',
    );
    expect(await configError(withHost({ host: 'web1', deployTo: 'relative/dir' }))).toContain(
      'environments.local.hosts.0.deployTo: must be an absolute path on the host, got "relative/dir"',
    );
    const twice = {
      ...minimal,
      environments: {
        local: {
          hosts: [
            { name: 'a', local: true, deployTo: 'x' },
            { name: 'a', local: true, deployTo: 'y' },
          ],
        },
      },
    };
    expect(await configError(twice)).toContain('host name "a" appears twice');
    expect(await configError({ ...minimal, environments: { local: { hosts: [] } } })).toContain(
      'environments.local.hosts: Too small',
    );
  });
  it('.env and .env.<environment> values are loaded into config.env (the latter wins)', async () => {
    const files = {
      '.env': 'SLIPWAY_UNIT_A=alpha-value\nSLIPWAY_UNIT_B=from-env\n# comment\n',
      '.env.local': 'SLIPWAY_UNIT_B=beta-value\n',
    };
    const { config } = await load(minimal, { files });
    expect(config.env).toEqual({ SLIPWAY_UNIT_A: 'alpha-value', SLIPWAY_UNIT_B: 'beta-value' });
    const explicit = await load(minimal, { files, environment: 'local' });
    expect(explicit.config.env).toEqual({ SLIPWAY_UNIT_A: 'alpha-value', SLIPWAY_UNIT_B: 'beta-value' });
    expect((await load(minimal)).config.env).toEqual({});
  });
  it('a broken file is a config error: bad JSON, a missing file, an unknown extension', async () => {
    expect(await configError('{ nope')).toMatch(/not valid JSON/);
    expect(await configError(minimal, { file: 'deploy.config.yaml' })).toMatch(/expected a \.ts, \.mjs or \.json file/);
    await expect(loadConfig({ configFile: path.join(scratch, 'missing.json') })).rejects.toThrow(
      /config file not found: .*missing\.json/,
    );
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
    expect((await write({ url: 'http://127.0.0.1:8080/health' })).healthcheck).toMatchObject({
      successes: 2,
      intervalSeconds: 1,
    });
  });

  it('bad values exit 2 naming each key and what is valid', async () => {
    const error = await write({ url: 'http://127.0.0.1:8080/health', successes: 0, intervalSeconds: -1 }).catch(
      (e: Error) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).exitCode).toBe(2);
    expect((error as Error).message).toMatch(/healthcheck\.successes: .*>=1/);
    expect((error as Error).message).toMatch(/healthcheck\.intervalSeconds: .*>0/);
  });

  it('a timeout too short for the answers in a row it asks for is refused', async () => {
    const error = await write({
      url: 'http://127.0.0.1:8080/health',
      successes: 4,
      intervalSeconds: 10,
      timeoutSeconds: 29,
    }).catch((e: Error) => e);
    expect((error as ConfigError).exitCode).toBe(2);
    expect((error as Error).message).toContain(
      'healthcheck.timeoutSeconds: must be at least (successes − 1) × intervalSeconds = 30 s',
    );
  });
  it('data (for pull) and protected: read per environment; items inside each other or outside shared refused', async () => {
    const data = { dirs: ['uploads'], files: ['config/site.json'], dump: { command: 'pg_dump app', file: 'db.sql' } };
    const config = {
      ...minimal,
      data,
      environments: {
        ...minimal.environments,
        production: { protected: true, hosts: [{ name: 'p', host: 'p', deployTo: '/srv/app' }] },
      },
    };
    const local = (await load(config)).config;
    expect(local.data).toEqual(data);
    expect(local.protected).toBe(false);
    expect((await load(config, { environment: 'production' })).config.protected).toBe(true);
    expect((await load(minimal)).config.data).toBeUndefined();
    const message = await configError({
      ...minimal,
      data: { dirs: ['uploads', '../etc'], files: ['uploads/a.txt'], dump: { command: '', file: 'uploads' } },
    });
    expect(message).toContain('data.dirs.1: must be a path inside the release');
    expect(message).toContain('data.dump.command: Too small');
    expect(await configError({ ...minimal, data: { files: ['uploads/a.txt'], dirs: ['uploads'] } })).toContain(
      'data: "uploads/a.txt" is inside "uploads"',
    );
    expect(await configError({ ...minimal, data: {} })).toContain('data: give dirs, files or dump');
    expect(
      await configError({ ...minimal, environments: { local: { ...minimal.environments.local, protected: 'yes' } } }),
    ).toContain('environments.local.protected: Invalid input: expected boolean');
  });
});

describe('remote repositories and notifications', () => {
  it('a repository URL is kept as written; a path is resolved from the config file', async () => {
    const url = 'ssh://git@example.com:2222/org/app.git';
    expect((await load({ ...minimal, repository: url })).config.repository).toBe(url);
    const { dir, config } = await load({ ...minimal, repository: 'app' });
    expect(config.repository).toBe(path.join(dir, 'app'));
  });

  it('notifications run on the deployer unless `on: hosts`, for 30 s at most; no cwd, `on` is one of the two', async () => {
    const hooks = {
      onSuccess: [{ name: 'chat', commands: ['true'] }],
      onFailure: [{ name: 'h', on: 'hosts', commands: ['true'] }],
    };
    const { config } = await load({ ...minimal, hooks });
    expect(config.hooks.onSuccess).toEqual([{ name: 'chat', on: 'deployer', commands: ['true'], timeoutSeconds: 30 }]);
    expect(config.hooks.onFailure[0].on).toBe('hosts');
    const bad = await configError({
      ...minimal,
      hooks: { onFailure: [{ name: 'x', on: 'web1', cwd: 'a', commands: [] }] },
    });
    expect(bad).toContain('hooks.onFailure.0.on:');
    expect(bad).toContain('hooks.onFailure.0.cwd: unknown key');
  });
});

describe('setup', () => {
  it("defaults: root, and the helper's config as README writes it (its log dir from vars.logDir)", async () => {
    const { config } = await load({ ...minimal, vars: { logDir: '/var/log/hello' } });
    expect(config.setup).toEqual({
      user: 'root',
      helper: {
        site: '/etc/nginx/sites-available/hello.conf',
        enabled: '/etc/nginx/sites-enabled/hello.conf',
        nginxTest: '/usr/sbin/nginx -t -q',
        nginxReload: '/usr/sbin/nginx -s reload',
        programFile: '/etc/supervisor/conf.d/hello.conf',
        supervisorctl: '/usr/bin/supervisorctl',
        allowedPaths: ['/var/log/hello', '/var/log/nginx'],
        stateDir: '/var/lib/slipway/hello',
      },
    });
  });

  it('a helper value on two lines (it would add a line to the root-owned config), an unknown key: exit 2', async () => {
    const message = await configError({
      ...minimal,
      setup: { helper: { nginxTest: 'nginx -t\nsite=/etc/passwd' }, x: 1 },
    });
    expect(message).toContain('setup.helper.nginxTest: a command on one line');
    expect(message).toContain('setup.x: unknown key');
  });
});

describe('cutover', () => {
  const health = { url: 'http://127.0.0.1:8080/health' };
  const services = { nginx: {}, supervisor: {} };
  const files = { 'nginx.conf.hbs': '', 'supervisor.conf.hbs': '' };
  const bg = (extra: Record<string, unknown>) => ({ ...minimal, templates: { dir: '.' }, ...extra });

  it('default restart; blue-green gets listen socket and drainSeconds 10; an environment overrides it', async () => {
    expect((await load(minimal)).config.cutover).toEqual({ strategy: 'restart' });
    const { config } = await load(bg({ services, healthcheck: health, cutover: { strategy: 'blue-green' } }), {
      files,
    });
    expect(config.cutover).toEqual({ strategy: 'blue-green', listen: 'socket', drainSeconds: 10 });
    const overridden = bg({
      services,
      healthcheck: health,
      cutover: { strategy: 'blue-green' },
      environments: { local: { ...minimal.environments.local, cutover: { strategy: 'restart' } } },
    });
    expect((await load(overridden, { files })).config.cutover).toEqual({ strategy: 'restart' });
  });

  it('blue-green without nginx, supervisor or a health check: exit 2 saying what it needs and why', async () => {
    const message = await configError(bg({ cutover: { strategy: 'blue-green' } }));
    expect(message).toContain("cutover.strategy: 'blue-green' needs services.nginx (nginx moves the traffic");
    expect(message).toContain('services.supervisor (it runs the two slots)');
    expect(message).toContain('healthcheck (the new slot is checked on its own socket or port');
    const noNginx = bg({
      services: { nginx: false, supervisor: {} },
      healthcheck: health,
      cutover: { strategy: 'blue-green' },
    });
    expect(await configError(noNginx, { files })).not.toContain('services.supervisor');
  });

  it("a bad strategy, ports without listen 'port', listen 'port' without two ports: exit 2 naming the key", async () => {
    expect(await configError(bg({ cutover: { strategy: 'green' } }))).toMatch(/cutover\.strategy: /);
    const ports = bg({ services, healthcheck: health, cutover: { strategy: 'blue-green', ports: [9001, 9002] } });
    expect(await configError(ports, { files })).toContain("cutover.ports: only used with listen: 'port'");
    const port = (cutover: Record<string, unknown>) =>
      bg({ services, healthcheck: health, cutover: { strategy: 'blue-green', listen: 'port', ...cutover } });
    expect(await configError(port({}), { files })).toContain(
      "cutover.ports: listen: 'port' needs ports: [blue, green]",
    );
    expect(await configError(port({ ports: [9001, 9001] }), { files })).toContain(
      'cutover.ports: the two slots need two different ports',
    );
    expect(await configError(port({ ports: [9001, 70000] }), { files })).toMatch(/cutover\.ports\.1: /);
    expect(await configError(port({ ports: [9001] }), { files })).toMatch(/cutover\.ports/);
  });

  it("listen 'port' with two ports: loaded, the slots on ports[0] (blue) and ports[1] (green)", async () => {
    const { config } = await load(
      bg({ services, healthcheck: health, cutover: { strategy: 'blue-green', listen: 'port', ports: [9001, 9002] } }),
      { files },
    );
    expect(config.cutover).toEqual({ strategy: 'blue-green', listen: 'port', ports: [9001, 9002], drainSeconds: 10 });
  });
});

describe('artifacts', () => {
  it('defaults: a dir store at <project>/.artifacts, installs on the hosts, 10 kept; a relative path from the project', async () => {
    const { dir, config } = await load({ ...minimal, artifacts: {} });
    expect(config.artifacts).toEqual({
      store: { type: 'dir', path: path.join(dir, '.artifacts') },
      dependencies: 'host',
      keep: 10,
    });
    const http = await load({ ...minimal, artifacts: { store: { type: 'http', url: 'http://store:8080/a' } } });
    expect(http.config.artifacts?.store).toEqual({ type: 'http', url: 'http://store:8080/a' });
    expect((await load(minimal)).config.artifacts).toBeUndefined();
  });

  it('a bad store is refused at load, naming the key', async () => {
    const unknown = await configError({ ...minimal, artifacts: { store: { type: 'ftp', url: 'x' } } });
    expect(unknown).toContain('artifacts.store.type');
    const url = await configError({ ...minimal, artifacts: { store: { type: 'http', url: 'ftp://x/y' } } });
    expect(url).toContain('artifacts.store.url');
    const secret = await configError({ ...minimal, artifacts: { store: { type: 'http', url: 'http://u:p@x/y' } } });
    expect(secret).toContain('artifacts.store.url: no user or password in the URL');
    const keep = await configError({ ...minimal, artifacts: { keep: 0 } });
    expect(keep).toContain('artifacts.keep');
  });
});

describe('delta', () => {
  it('on by default; off with delta: false, also for one environment only', async () => {
    expect((await load(minimal)).config.delta).toBe(true);
    expect((await load({ ...minimal, delta: false })).config.delta).toBe(false);
    const perEnv = { ...minimal, environments: { local: { ...minimal.environments.local, delta: false } } };
    expect((await load(perEnv)).config.delta).toBe(false);
  });

  it('a value that is not true or false is refused at load, naming the key', async () => {
    expect(await configError({ ...minimal, delta: 'yes' })).toMatch(/delta: .*boolean/);
  });
});

describe('artifacts.buildOn', () => {
  const host = (name: string, roles: string[]) => ({ name, host: `${name}.example`, roles, deployTo: '/srv/app' });
  const withBuild = (artifacts: Record<string, unknown>, type = 'node', hosts = [host('web1', ['web'])]) => ({
    ...minimal,
    dependencies: { type },
    artifacts,
    defaultEnvironment: 'production',
    environments: { production: { hosts: [host('build1', ['build']), ...hosts] } },
  });
  const prebuilt = { dependencies: 'prebuilt', buildOn: 'build' };

  it('the first host with the role builds; one with only that role is no host of any task, one with another is', async () => {
    const { config } = await load(withBuild(prebuilt, 'node', [host('web1', ['web']), host('web2', ['web', 'build'])]));
    expect(config.hosts.map((h) => h.name)).toEqual(['web1', 'web2']);
    expect(config.artifacts?.buildOn).toEqual({ role: 'build', host: host('build1', ['build']) });
    expect((await load(withBuild({ dependencies: 'prebuilt' }))).config.hosts.map((h) => h.name)).toEqual([
      'build1',
      'web1',
    ]);
  });

  it('refused at load (exit 2), naming the key and what would be valid', async () => {
    expect(await configError(withBuild({ ...prebuilt, buildOn: 'builder' }))).toContain(
      'artifacts.buildOn: no host of environment "production" has role "builder"; roles there: build, web',
    );
    expect(await configError(withBuild({ buildOn: 'build' }))).toContain(
      "artifacts.buildOn: builds the prebuilt dependency environment; it needs artifacts.dependencies: 'prebuilt' " +
        "and dependencies.type 'node' (got dependencies 'host', type 'node')",
    );
    expect(await configError(withBuild(prebuilt, 'python'))).toContain(
      "artifacts.dependencies: 'prebuilt' needs dependencies.type 'node'",
    );
    expect(await configError(withBuild({ dependencies: 'prebuilt' }, 'python'))).toContain(
      'got "python": use \'host\'',
    );
    expect(await configError(withBuild(prebuilt, 'node', []))).toContain(
      'environments.production.hosts: every host has only the build role "build"',
    );
    expect(await configError(withBuild({ ...prebuilt, buildOn: 'a b' }))).toContain('artifacts.buildOn: a role name');
  });
});
