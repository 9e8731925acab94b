// Renders templates/*.hbs per host and release with handlebars: strict (a missing variable is an
// error naming it), no HTML escaping. Rendered files travel inside the release, so a rollback
// brings back the configs that belong to it; one that holds a secret is private.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { HelperDelegate } from 'handlebars';
import type { HostConfig, ResolvedConfig } from './core/config.js';
import { ConfigError } from './core/config.js';
import { layout } from './core/paths.js';
import type { Shell } from './core/sh.js';
import { Secrets } from './core/redact.js';
import { sh } from './core/sh.js';

export interface RenderedFile {
  /** File name inside the release's .slipway/ folder, e.g. nginx.conf. */
  name: string;
  content: string;
  /** It holds a value from a .env file (in any form): written 0600, here and where it is installed. */
  secret: boolean;
}

export function templateView(config: ResolvedConfig, host: HostConfig, releaseId: string) {
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
    return new ConfigError(`template ${file}, line ${e.lineNumber}: variable "${expression || missing[1]}" is not defined\n  variables: ${known.join(', ')}`);
  }
  return new ConfigError(`template ${file}: ${e.message.replace(/\n+/g, ' ')}\n  variables: ${known.join(', ')}`);
}

/** Renders every template now, so a broken one is refused before any host changes. */
export async function renderTemplates(config: ResolvedConfig, host: HostConfig, releaseId: string): Promise<RenderedFile[]> {
  const Handlebars = (await import('handlebars')).default;
  const hbs = Handlebars.create();
  const json: HelperDelegate = (value: unknown) => JSON.stringify(value);
  hbs.registerHelper('json', json);
  const view = templateView(config, host, releaseId);
  const known = [...Object.keys(view).filter((k) => k !== 'env'), ...Object.keys(config.env).map((k) => `env.${k}`)];
  // A .env value in any form (raw, {{json env.X}}, URL-encoded…) makes a rendered file private.
  const secrets = new Secrets().add(Object.values(config.env));
  return templateFiles(config).map((file) => {
    const source = readFileSync(path.join(config.templates.dir, file), 'utf8');
    try {
      const content = hbs.compile(source, { strict: true, noEscape: true })(view);
      return { name: file.replace(/\.hbs$/, ''), content, secret: secrets.foundIn(content) };
    } catch (error) {
      throw templateError(error, source, path.relative(config.projectRoot, path.join(config.templates.dir, file)), known);
    }
  });
}

/** How the nginx check's failure starts: the upload step tells it from the rest of its round trip by this. */
export const NGINX_REJECTED = 'nginx -t rejected the rendered site';

/**
 * Checks a rendered nginx site with `nginx -t` against a throwaway main config that includes it.
 * `nginxTest` is the command as the install runs it (services.sudo + services.nginx.test), so it
 * checks with the same privileges: as the deploy user it cannot create nginx's temp dirs on a host
 * where nginx never ran. Its own -p/-c are appended (nginx takes the last ones).
 * `nginx -t` also binds the listen sockets; as a non-root deploy user (port 80) or beside the running
 * nginx that fails with bind() errors, which say nothing about the file: only other errors count.
 * nginx's message names the site by the staged path, which is gone by the time anyone reads it: it
 * says "the rendered nginx.conf" instead, without the line about the throwaway main config.
 */
export function nginxCheckScript(nginxTest: Shell, releaseDir: string) {
  const dir = `${releaseDir}/.slipway`;
  const main = `pid ${dir}/nginx-check/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n  access_log off;\n  include ${dir}/nginx.conf;\n}\n`;
  return sh`mkdir -p ${`${dir}/nginx-check/logs`}
printf '%s' ${main} > ${`${dir}/nginx-check/nginx.conf`}
check=0; out=$(${nginxTest} -q -p ${`${dir}/nginx-check/`} -c ${`${dir}/nginx-check/nginx.conf`} 2>&1) || check=$?
rm -rf ${`${dir}/nginx-check`}
if [ "$check" != 0 ] && printf '%s\\n' "$out" | grep -E '\\[(emerg|crit|alert)\\]' | grep -qv 'bind() to'; then
  out=$(printf '%s\\n' "$out" | grep -vF -- ${`${dir}/nginx-check/nginx.conf test failed`}); site=${`${dir}/nginx.conf`}; out=\${out//"$site"/the rendered nginx.conf}
  printf '%s:\\n%s\\n' ${NGINX_REJECTED} "$out" >&2; exit 1
fi`;
}
