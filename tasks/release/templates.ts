// Renders templates/*.hbs per host and release with handlebars: strict (a missing variable is an
// error naming it), no HTML escaping. Rendered files travel inside the release, so a rollback
// brings back the configs that belong to it; one that holds a secret is private.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { HelperDelegate } from 'handlebars';
import type { HostConfig, ResolvedConfig } from '../config/types.js';
import { ConfigError } from '../lib/errors.js';
import { layout } from '../lib/paths.js';
import { Secrets } from '../lib/redact.js';

export interface RenderedFile {
  /** File name inside the release's .slipway/ folder, e.g. nginx.conf. */
  name: string;
  content: string;
  /** It holds a value from a .env file (in any form): written 0600, here and where it is installed. */
  secret: boolean;
}

/** blue-green's two slots, in the order of `cutover.ports`. */
export const SLOTS = ['blue', 'green'] as const;
export type Slot = (typeof SLOTS)[number];

/**
 * The variables that differ per slot (blue-green) or name the one program (restart): `program` (the
 * supervisor program's name), `slot`, `socket` or `port` (where the slot listens), `drainSeconds`.
 */
function slotView(config: ResolvedConfig, host: HostConfig, slot?: Slot) {
  const name = config.services?.supervisor?.name ?? config.application;
  const cutover = config.cutover;
  if (cutover.strategy === 'restart' || !slot) return { program: config.application };
  const p = layout(host.deployTo);
  return {
    program: `${name}-${slot}`,
    slot,
    drainSeconds: cutover.drainSeconds,
    ...(cutover.listen === 'socket'
      ? { socket: p.slotSocket(slot) }
      : { port: cutover.ports?.[SLOTS.indexOf(slot)] ?? config.port }),
  };
}

/** How nginx reaches the program: a fixed address (restart, blue-green's live.sock) or an included upstream. */
function upstreamView(config: ResolvedConfig, host: HostConfig) {
  const cutover = config.cutover;
  const p = layout(host.deployTo);
  if (cutover.strategy === 'restart') return { strategy: 'restart', upstreamServer: `127.0.0.1:${config.port}` };
  if (cutover.listen === 'socket') return { strategy: 'blue-green', upstreamServer: `unix:${p.liveSocket}` };
  return { strategy: 'blue-green', upstreamInclude: p.upstream };
}

export function templateView(config: ResolvedConfig, host: HostConfig, releaseId: string, slot?: Slot) {
  const p = layout(host.deployTo);
  return {
    ...config.vars,
    application: config.application,
    environment: config.environment,
    host: host.name,
    deployTo: p.root,
    currentPath: p.current,
    releasePath: p.release(releaseId),
    sharedPath: p.shared,
    releaseId,
    port: config.port,
    serverName: config.serverName,
    ...(config.runAs ? { user: config.runAs } : {}),
    env: config.env,
    ...upstreamView(config, host),
    ...slotView(config, host, slot),
  };
}

function templateFiles(config: ResolvedConfig): string[] {
  if (!existsSync(config.templates.dir)) return [];
  const wanted = (file: string) =>
    file.endsWith('.hbs') &&
    !(file.startsWith('nginx') && !config.templates.nginx) &&
    !(file.startsWith('supervisor') && !config.templates.supervisor);
  return readdirSync(config.templates.dir).filter(wanted).sort();
}

/**
 * What went wrong in a template, naming the variable: handlebars' strict mode says only `"X" not
 * defined in [object Object]`, with the location of the whole expression (`env.X`) in the source.
 */
function templateError(error: unknown, source: string, file: string, known: string[]): ConfigError {
  const e = error as Error & { lineNumber?: number; column?: number; endLineNumber?: number; endColumn?: number };
  const missing = /^"(.+)" not defined in /.exec(e.message);
  if (missing && e.lineNumber !== undefined && e.column !== undefined) {
    const line = source.split('\n')[e.lineNumber - 1] ?? '';
    const expression = e.endLineNumber === e.lineNumber ? line.slice(e.column, e.endColumn).trim() : missing[1];
    return new ConfigError(
      `template ${file}, line ${e.lineNumber}: variable "${expression || missing[1]}" is not defined\n` +
        `  variables: ${known.join(', ')}`,
    );
  }
  return new ConfigError(`template ${file}: ${e.message.replace(/\n+/g, ' ')}\n  variables: ${known.join(', ')}`);
}

/**
 * Per config: a handlebars environment, each template source compiled once (compiling, with its source maps, cost
 * ~15 ms a template: at 100 hosts, seconds), and its secrets. The files are read at every render.
 */
interface Compiler {
  compile(source: string): (view: object) => string;
  secrets: Secrets;
}
const compilers = new WeakMap<ResolvedConfig, Promise<Compiler>>();

function compilerFor(config: ResolvedConfig): Promise<Compiler> {
  let compiler = compilers.get(config);
  if (!compiler) {
    compiler = (async () => {
      const Handlebars = (await import('handlebars')).default;
      const hbs = Handlebars.create();
      const json: HelperDelegate = (value: unknown) => JSON.stringify(value);
      hbs.registerHelper('json', json);
      const compiled = new Map<string, (view: object) => string>();
      const compile = (source: string) => {
        let render = compiled.get(source);
        // Compiled on its first render: a parse error is thrown there, as a missing variable is.
        if (!render) {
          render = hbs.compile(source, { strict: true, noEscape: true });
          compiled.set(source, render);
        }
        return render;
      };
      // A .env value in any form (raw, {{json env.X}}, URL-encoded…) makes a rendered file private.
      return { compile, secrets: new Secrets().add(Object.values(config.env)) };
    })();
    compilers.set(config, compiler);
  }
  return compiler;
}

/** Renders every template now, so a broken one is refused before any host changes. */
export async function renderTemplates(
  config: ResolvedConfig,
  host: HostConfig,
  releaseId: string,
): Promise<RenderedFile[]> {
  const { compile, secrets } = await compilerFor(config);
  // blue-green: the program is rendered once per slot (supervisor.blue.conf, supervisor.green.conf), so that
  // any release can be started in either slot.
  const slotted = (file: string) => config.cutover.strategy === 'blue-green' && file === 'supervisor.conf.hbs';
  const renders = templateFiles(config).flatMap(
    (file): Array<{ file: string; slot?: Slot; name: string }> =>
      slotted(file)
        ? SLOTS.map((slot) => ({ file, slot, name: `supervisor.${slot}.conf` }))
        : [{ file, name: file.replace(/\.hbs$/, '') }],
  );
  const view = templateView(config, host, releaseId, slotted('supervisor.conf.hbs') ? 'blue' : undefined);
  const known = [...Object.keys(view).filter((k) => k !== 'env'), ...Object.keys(config.env).map((k) => `env.${k}`)];
  return renders.map(({ file, slot, name }) => {
    const source = readFileSync(path.join(config.templates.dir, file), 'utf8');
    try {
      const content = compile(source)(templateView(config, host, releaseId, slot));
      return { name, content, secret: secrets.foundIn(content) };
    } catch (error) {
      throw templateError(
        error,
        source,
        path.relative(config.projectRoot, path.join(config.templates.dir, file)),
        known,
      );
    }
  });
}
