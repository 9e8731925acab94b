// The deploy configuration: one zod schema (schema.ts, loaded only when a task runs) gives
// both the TypeScript type and the validation, every error reported at once with its key path.
// .env files are read here, without printing.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Plugin } from 'esbuild';
import type { z } from 'zod';
import {
  cacheDirFor,
  changedInputs,
  type Inputs,
  ownImportMeta,
  readJson,
  recordInputs,
  sha256,
  writeWhole,
} from '../lib/build-cache.js';
import { ConfigError } from '../lib/errors.js';
import { isRemoteRepository } from '../lib/paths.js';
import { MIN_SECRET_LENGTH, SECRET_KEY, secrets } from '../lib/redact.js';
import type { artifactsSchema, cutoverSchema, servicesSchema, setupSchema } from './schema.js';
import type { ArtifactsConfig, Cutover, HostConfig, ResolvedConfig, Services, SetupConfig } from './types.js';

function resolveServices(application: string, raw: z.output<typeof servicesSchema> | undefined): Services | undefined {
  if (!raw) return undefined;
  const nginx = raw.nginx === false ? undefined : (raw.nginx ?? {});
  const supervisor = raw.supervisor === false ? undefined : (raw.supervisor ?? {});
  return {
    sudo: raw.sudo ?? (raw.helper ? 'sudo -n' : ''),
    ...(raw.helper ? { helper: { command: raw.helper, application } } : {}),
    nginx: nginx && {
      site: nginx.site ?? `/etc/nginx/sites-available/${application}.conf`,
      enabled: nginx.enabled ?? `/etc/nginx/sites-enabled/${application}.conf`,
      test: nginx.test ?? 'nginx -t',
      reload: nginx.reload ?? 'nginx -s reload',
    },
    supervisor: supervisor && {
      program: supervisor.program ?? `/etc/supervisor/conf.d/${application}.conf`,
      ctl: supervisor.ctl ?? 'supervisorctl',
      name: supervisor.name ?? application,
    },
  };
}

/**
 * A managed service needs its rendered config: without the template nothing would be installed and
 * the restart would fail on a program supervisor never heard of. Refused at load, naming where it looked.
 */
function checkServiceTemplates(
  file: string,
  services: Services | undefined,
  templates: ResolvedConfig['templates'],
): void {
  const missing = (['nginx', 'supervisor'] as const).filter(
    (kind) => services?.[kind] && templates[kind] && !existsSync(path.join(templates.dir, `${kind}.conf.hbs`)),
  );
  if (!missing.length) return;
  const lines = missing.map((kind) => `  services.${kind} needs a template: no ${kind}.conf.hbs in ${templates.dir}`);
  throw new ConfigError(
    `invalid config ${file}:\n${lines.join('\n')} ` +
      '(templates/, the repository and .env files are looked up beside the config file, ' +
      `${path.dirname(file)}; set templates.dir, or ${missing.map((kind) => `services.${kind}: false`).join(' / ')})`,
  );
}

/**
 * Reads a .env file; its values are redacted from every output from here on, before the config that
 * may use them is evaluated. A secret-looking key's value too short to be redacted is refused.
 */
function readEnvFile(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  const values = parseDotenv(readFileSync(file, 'utf8'));
  secrets.add(Object.values(values));
  const short = Object.entries(values).filter(
    ([key, value]) => SECRET_KEY.test(key) && value.length > 0 && value.length < MIN_SECRET_LENGTH,
  );
  if (short.length) {
    const named = short
      .map(([key, value]) => `${key} is ${value.length} character${value.length === 1 ? '' : 's'}`)
      .join(', ');
    const why =
      `too short to be redacted from output (a secret needs ${MIN_SECRET_LENGTH} characters or more); ` +
      'use a longer value';
    throw new ConfigError(`${file}: ${named}: ${why}`);
  }
  return values;
}

// dotenv's parse is pure (config() prints and touches process.env); imported lazily to keep start-up small.
let parseDotenv: (text: string) => Record<string, string>;

/** `cache`: a .ts config compiled under plain node may come from (and goes to) the cache (importTypeScript). */
async function importConfigFile(file: string, cache: boolean): Promise<unknown> {
  if (!existsSync(file))
    throw new ConfigError(`config file not found: ${file}; pass --config FILE (.ts, .mjs or .json)`);
  const ext = path.extname(file);
  if (ext === '.json') {
    try {
      return JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new ConfigError(`config ${file}: not valid JSON: ${(error as Error).message}`);
    }
  }
  if (!['.ts', '.mts', '.mjs', '.js'].includes(ext))
    throw new ConfigError(`config ${file}: expected a .ts, .mjs or .json file`);
  let module: { default?: unknown; config?: unknown };
  try {
    module = await import(pathToFileURL(file).href).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ERR_UNKNOWN_FILE_EXTENSION') return importTypeScript(file, cache);
      throw error;
    });
  } catch (error) {
    // A syntax error, or the config's own code throwing (say, on a missing variable): the config's fault.
    throw new ConfigError(`config ${file}: ${(error as Error).message}`);
  }
  return module.default ?? module.config;
}

/**
 * An app's config imports defineConfig from the package 'slipway': bundled in (tree-shaken to
 * defineConfig, as the package declares no side effects) instead of loading every module of the package
 * again at run time (~0.1 s). Any other package stays external.
 */
const bundleSlipway: Plugin = {
  name: 'bundle-slipway',
  setup(build) {
    build.onResolve({ filter: /^slipway$/ }, (args) => ({
      path: createRequire(path.join(args.resolveDir, 'deploy.config.ts')).resolve('slipway'),
    }));
  },
};

/**
 * Under plain node (the prebuilt fabfile.mjs, `npx slipway`) a .ts config is compiled by esbuild, with its
 * own relative imports bundled in. tsx's loader API does the same in about 0.5 s; esbuild in under 0.1 s
 * (about a third of the CPU time of a rollback), so the compiled config is cached: in node_modules/.cache/slipway
 * beside the config (bare imports still resolve from the project), with a manifest of every file it was
 * compiled from (size, mtime, else sha256), and compiled again once one changed; a run whose config is
 * unchanged loads no esbuild. Without `cache` (or when that folder cannot be written) it is compiled to
 * a sibling temp .mjs, imported once and removed.
 */
async function importTypeScript(file: string, cache: boolean): Promise<{ default?: unknown; config?: unknown }> {
  const dir = cacheDirFor(file);
  const manifest = path.join(dir, `config-${sha256(file).slice(0, 12)}.json`);
  const cached = cache ? readJson<{ compiled: string; inputs: Inputs }>(manifest) : undefined;
  if (cached && !changedInputs(cached.inputs).length && existsSync(path.join(dir, cached.compiled)))
    return import(pathToFileURL(path.join(dir, cached.compiled)).href);
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [file],
    absWorkingDir: path.dirname(file),
    bundle: true,
    packages: 'external',
    format: 'esm',
    platform: 'node',
    target: 'node20',
    write: false,
    metafile: true,
    logLevel: 'silent',
    plugins: [bundleSlipway, ownImportMetaPlugin],
  });
  const text = result.outputFiles[0].text;
  if (cache) {
    const name = `config-${sha256(text).slice(0, 16)}.mjs`;
    const written = (() => {
      try {
        const inputs = recordInputs(
          Object.keys(result.metafile.inputs).map((f) => path.resolve(path.dirname(file), f)),
        );
        mkdirSync(dir, { recursive: true });
        writeWhole(path.join(dir, name), text, 0o600);
        writeWhole(manifest, JSON.stringify({ compiled: name, inputs }));
        if (cached && cached.compiled !== name) rmSync(path.join(dir, cached.compiled), { force: true });
        return true;
      } catch {
        return false; // a folder this user cannot write: compiled aside, as without the cache
      }
    })();
    if (written) return import(pathToFileURL(path.join(dir, name)).href);
  }
  const compiled = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}.${randomUUID().slice(0, 8)}.mjs`,
  );
  writeFileSync(compiled, text, { mode: 0o600 });
  try {
    return await import(pathToFileURL(compiled).href);
  } finally {
    rmSync(compiled, { force: true });
  }
}

/** import.meta.dirname / filename / url in the config and its own modules mean those files, not the compiled one. */
const ownImportMetaPlugin: Plugin = {
  name: 'own-import-meta',
  setup(build) {
    build.onLoad({ filter: /\.[cm]?[jt]s$/ }, (args) => {
      if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
      const contents = ownImportMeta(args.path, readFileSync(args.path, 'utf8'));
      if (contents === undefined) return undefined;
      return { contents, loader: path.extname(args.path).endsWith('ts') ? 'ts' : 'js' };
    });
  },
};

export interface LoadOptions {
  configFile: string;
  environment?: string;
  ref?: string;
}

export async function loadConfig({ configFile, environment, ref }: LoadOptions): Promise<ResolvedConfig> {
  parseDotenv ??= (await import('dotenv')).parse;
  const file = path.resolve(configFile);
  const projectRoot = path.dirname(file);
  const env: Record<string, string> = {};
  const apply = (values: Record<string, string>) => {
    Object.assign(env, values);
    for (const [key, value] of Object.entries(values)) process.env[key] ??= value;
  };
  apply(readEnvFile(path.join(projectRoot, '.env')));
  // The config may read .env.<environment> through process.env, so those values must be set before
  // it is evaluated: with --env that is known; otherwise "local" is assumed and, if the config's
  // defaultEnvironment says otherwise, the config is evaluated again (from a fresh copy: a module
  // is evaluated once per path) with that environment's values instead.
  const assumed = environment ?? 'local';
  const specific = readEnvFile(path.join(projectRoot, `.env.${assumed}`));
  const saved = { ...process.env };
  apply(specific);
  const { fileSchema, formatIssues } = await import('./schema.js');
  const load = async (from: string) => {
    // A copy (below) is evaluated anew, never cached.
    const parsed = fileSchema.safeParse(await importConfigFile(from, from === file));
    if (!parsed.success) throw new ConfigError(formatIssues(parsed.error, file));
    return parsed.data;
  };
  let raw = await load(file);
  const name = environment ?? raw.defaultEnvironment ?? 'local';
  if (name !== assumed) {
    for (const key of Object.keys(specific)) {
      delete env[key];
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
    apply(readEnvFile(path.join(projectRoot, '.env')));
    const values = readEnvFile(path.join(projectRoot, `.env.${name}`));
    if (Object.keys(values).length) {
      apply(values);
      const copy = path.join(projectRoot, `.${path.basename(file)}.${process.pid}${path.extname(file)}`);
      copyFileSync(file, copy);
      try {
        raw = await load(copy);
      } finally {
        rmSync(copy, { force: true });
      }
    }
  }
  // Own keys only: "__proto__" or "constructor" are not environments.
  const chosen = Object.hasOwn(raw.environments, name) ? raw.environments[name] : undefined;
  if (!chosen) {
    throw new ConfigError(
      `unknown environment "${name}"; environments: ${Object.keys(raw.environments).join(', ') || '(none)'}`,
    );
  }
  const { hosts, ...overrides } = chosen as { hosts: HostConfig[] } & Record<string, unknown>;
  const merged = { ...raw, ...overrides } as typeof raw;

  const hostErrors = hosts.flatMap((h, i) => {
    const at = `environments.${name}.hosts.${i}`;
    if (h.local && h.host) return [`  ${at}: give either local: true or host, not both`];
    if (!h.local && !h.host) return [`  ${at}: needs host (an address or ~/.ssh/config alias) or local: true`];
    if (h.host && !path.isAbsolute(h.deployTo))
      return [`  ${at}.deployTo: must be an absolute path on the host, got "${h.deployTo}"`];
    return [];
  });
  const names = hosts.map((h) => h.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) hostErrors.push(`  environments.${name}.hosts: host name "${dup}" appears twice`);
  if (merged.rollout?.bakeSeconds && !merged.healthcheck) {
    const where = overrides.rollout ? `environments.${name}.rollout` : 'rollout';
    hostErrors.push(`  ${where}.bakeSeconds: needs a healthcheck to poll during the bake (set healthcheck.url)`);
  }
  if (hostErrors.length) throw new ConfigError(`invalid config ${file}:\n${hostErrors.join('\n')}`);

  const services = resolveServices(merged.application, merged.services);
  const templates = {
    dir: path.resolve(projectRoot, merged.templates?.dir ?? 'templates'),
    nginx: merged.templates?.nginx ?? true,
    supervisor: merged.templates?.supervisor ?? true,
  };
  checkServiceTemplates(file, services, templates);
  const cutover = resolveCutover(file, merged.cutover, services, merged.healthcheck !== undefined);
  const resolvedHosts = hosts.map((h) => (h.local ? { ...h, deployTo: path.resolve(projectRoot, h.deployTo) } : h));
  const artifacts = merged.artifacts && resolveArtifacts(projectRoot, merged.artifacts);
  const where = `${overrides.artifacts ? `environments.${name}.` : ''}artifacts`;
  const built =
    artifacts &&
    resolveBuildOn(file, where, name, artifacts, merged.artifacts?.buildOn, merged.dependencies?.type, resolvedHosts);

  return {
    application: merged.application,
    repository: isRemoteRepository(merged.repository ?? '.')
      ? merged.repository!
      : path.resolve(projectRoot, merged.repository ?? '.'),
    ref: ref ?? merged.ref ?? 'HEAD',
    subdirectory: merged.subdirectory,
    keepReleases: merged.keepReleases ?? 5,
    dependencies: merged.dependencies ?? { type: 'none' },
    shared: { files: merged.shared?.files ?? [], dirs: merged.shared?.dirs ?? [] },
    templates,
    vars: merged.vars ?? {},
    port: merged.port ?? 8080,
    serverName: merged.serverName ?? 'localhost',
    runAs: merged.runAs,
    hooks: {
      beforeSwitch: merged.hooks?.beforeSwitch ?? [],
      afterSwitch: merged.hooks?.afterSwitch ?? [],
      onSuccess: merged.hooks?.onSuccess ?? [],
      onFailure: merged.hooks?.onFailure ?? [],
    },
    parallel: merged.parallel,
    knownHosts: merged.knownHosts,
    connectTimeoutSeconds: merged.connectTimeoutSeconds ?? 10,
    keepConnections: merged.keepConnections ?? 0,
    keepConnectionsMaxAge: merged.keepConnectionsMaxAge ?? 600,
    services,
    healthcheck: merged.healthcheck,
    rollout: merged.rollout,
    maxConnects: merged.maxConnects,
    environment: name,
    // A host with only artifacts.buildOn's role is built on, never deployed to: no task's host.
    hosts: built ? built.deployHosts : resolvedHosts,
    env,
    projectRoot,
    cutover,
    configFile: file,
    data: merged.data && { dirs: merged.data.dirs ?? [], files: merged.data.files ?? [], dump: merged.data.dump },
    protected: (chosen as { protected?: boolean }).protected ?? false,
    setup: resolveSetup(merged.application, merged.setup, merged.vars?.logDir),
    environments: Object.keys(raw.environments),
    ...(artifacts ? { artifacts: built?.buildOn ? { ...artifacts, buildOn: built.buildOn } : artifacts } : {}),
    delta: merged.delta ?? true,
  };
}

/** setup's defaults: root, and the helper's config as README's "Preparing a server" writes it on Debian. */
function resolveSetup(
  application: string,
  raw: z.output<typeof setupSchema> | undefined,
  logDir: string | number | boolean | undefined,
): SetupConfig {
  const helper = raw?.helper ?? {};
  return {
    user: raw?.user ?? 'root',
    privateKey: raw?.privateKey,
    passphraseEnv: raw?.passphraseEnv,
    authorizedKeys: raw?.authorizedKeys,
    helper: {
      site: helper.site ?? `/etc/nginx/sites-available/${application}.conf`,
      enabled: helper.enabled ?? `/etc/nginx/sites-enabled/${application}.conf`,
      nginxTest: helper.nginxTest ?? '/usr/sbin/nginx -t -q',
      nginxReload: helper.nginxReload ?? '/usr/sbin/nginx -s reload',
      programFile: helper.programFile ?? `/etc/supervisor/conf.d/${application}.conf`,
      supervisorctl: helper.supervisorctl ?? '/usr/bin/supervisorctl',
      allowedPaths: helper.allowedPaths ?? [
        typeof logDir === 'string' ? logDir : `/var/log/slipway/${application}`,
        '/var/log/nginx',
      ],
      stateDir: helper.stateDir ?? `/var/lib/slipway/${application}`,
    },
  };
}

/**
 * blue-green runs the release as two supervisor programs behind nginx and checks the new one before
 * traffic moves: without nginx, supervisor and a health check it cannot. Refused at load, saying why.
 */
function resolveCutover(
  file: string,
  raw: z.output<typeof cutoverSchema> | undefined,
  services: Services | undefined,
  healthcheck: boolean,
): Cutover {
  if (!raw || raw.strategy === 'restart') return { strategy: 'restart' };
  const missing = [
    !services?.nginx && 'services.nginx (nginx moves the traffic from one slot to the other)',
    !services?.supervisor && 'services.supervisor (it runs the two slots)',
    !healthcheck && 'healthcheck (the new slot is checked on its own socket or port before traffic moves)',
  ].filter(Boolean);
  if (missing.length)
    throw new ConfigError(
      `invalid config ${file}:\n  cutover.strategy: 'blue-green' needs ${missing.join(', and ')}; ` +
        "or use strategy: 'restart'",
    );
  return {
    strategy: 'blue-green',
    listen: raw.listen ?? 'socket',
    ...(raw.ports ? { ports: raw.ports } : {}),
    drainSeconds: raw.drainSeconds ?? 10,
  };
}

/** `artifacts` with its defaults: a dir store at <project>/.artifacts, installs on the hosts, 10 kept. */
function resolveArtifacts(projectRoot: string, raw: z.output<typeof artifactsSchema>): ArtifactsConfig {
  const store = raw.store ?? { type: 'dir', path: '.artifacts' };
  return {
    store: store.type === 'dir' ? { ...store, path: path.resolve(projectRoot, store.path) } : store,
    dependencies: raw.dependencies ?? 'host',
    keep: raw.keep ?? 10,
  };
}

/**
 * artifacts.buildOn: the first host with that role builds the prebuilt environment; a host with that role alone
 * is only built on (left out of every task's hosts). Also refuses 'prebuilt' where it cannot work (python).
 */
function resolveBuildOn(
  file: string,
  where: string,
  environment: string,
  artifacts: ArtifactsConfig,
  role: string | undefined,
  type: string | undefined,
  hosts: HostConfig[],
): { buildOn?: ArtifactsConfig['buildOn']; deployHosts: HostConfig[] } {
  const fail = (message: string) => new ConfigError(`invalid config ${file}:\n  ${message}`);
  if (artifacts.dependencies === 'prebuilt' && type === 'python')
    throw fail(
      `${where}.dependencies: 'prebuilt' needs dependencies.type 'node' (a Python venv only works at the path it ` +
        `was built in); got "python": use 'host' (each host builds its own venv)`,
    );
  if (!role) return { deployHosts: hosts };
  if (artifacts.dependencies !== 'prebuilt' || type !== 'node')
    throw fail(
      `${where}.buildOn: builds the prebuilt dependency environment; it needs ${where}.dependencies: 'prebuilt' ` +
        `and dependencies.type 'node' (got dependencies '${artifacts.dependencies}', type '${type ?? 'none'}')`,
    );
  const host = hosts.find((h) => h.roles.includes(role));
  if (!host) {
    const roles = [...new Set(hosts.flatMap((h) => h.roles))];
    throw fail(
      `${where}.buildOn: no host of environment "${environment}" has role "${role}"; ` +
        `roles there: ${roles.join(', ') || '(none)'}`,
    );
  }
  const deployHosts = hosts.filter((h) => !(h.roles.length === 1 && h.roles[0] === role));
  if (!deployHosts.length)
    throw fail(
      `environments.${environment}.hosts: every host has only the build role "${role}" (${where}.buildOn): ` +
        'give the hosts to deploy to another role (or none)',
    );
  return { buildOn: { role, host }, deployHosts };
}
