// What `check` can tell from the config and the project alone, per host as every verdict is: the health check
// URL's shape (curl fetches it on each host) and the environment's .env file against its .example.
import type { ResolvedConfig } from '../config/types.js';
import { count } from '../lib/log.js';
import type { Verdict } from './service-checks.js';

/** Where the health check fetches from: the URL as curl runs it on each host. */
export function healthcheckVerdict(config: Pick<ResolvedConfig, 'healthcheck' | 'port' | 'vars'>): Verdict {
  const name = 'health check URL';
  const check = config.healthcheck;
  if (!check)
    return {
      name,
      ok: 'skipped',
      detail: `none: a deploy goes live unchecked (healthcheck.url, e.g. http://127.0.0.1:${config.port}/health)`,
    };
  const url = new URL(check.url);
  const bad = (detail: string, fix: string): Verdict => ({ name, ok: false, detail: `${check.url}: ${detail}`, fix });
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return bad(`${url.protocol} is not fetched`, 'use an http:// or https:// URL');
  if (url.username || url.password)
    return bad(
      'credentials in the URL reach curl’s command line on the host (ps shows them)',
      'check a path that needs no credentials, e.g. /health',
    );
  const loopback = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/.test(url.hostname);
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const listen = String(config.vars.listen ?? '80')
    .split(':')
    .at(-1);
  const ports = new Map([
    [config.port, 'the app (port)'],
    [Number(listen), 'nginx (vars.listen)'],
  ]);
  if (loopback && !ports.has(port))
    return bad(
      `port ${port}: neither the app's port ${config.port} nor nginx's ${listen}`,
      `point it at the app, http://127.0.0.1:${config.port}${url.pathname}, or through nginx`,
    );
  const what = loopback ? `on each host, ${ports.get(port)}` : `from each host, to ${url.host}`;
  const body = check.expectBody?.includes('{{releaseId}}') ? ', the body must name the new release' : '';
  return { name, ok: true, detail: `${check.url}: fetched ${what}, expects ${check.expectStatus}${body}` };
}

export interface EnvFiles {
  /** `.env.<environment>` in the project root, and its keys (present: the deploy installs it as shared/.env). */
  file: string;
  keys: string[] | null;
  /** `.env.<environment>.example`, when the project has one: the keys the app expects. */
  example?: { file: string; keys: string[] };
}

export function envVerdict(env: EnvFiles, dotenv: 'linked' | 'dangling' | 'none'): Verdict {
  const name = '.env file';
  const install = 'each deploy installs it on the hosts as shared/.env (0600)';
  if (env.keys) {
    const missingKeys = env.example?.keys.filter((k) => !env.keys!.includes(k)) ?? [];
    if (missingKeys.length)
      return {
        name,
        ok: false,
        detail: `${env.file} lacks ${missingKeys.join(', ')} (listed in ${env.example!.file})`,
        fix: `add ${missingKeys.length === 1 ? 'it' : 'them'} to ${env.file}`,
      };
    return { name, ok: true, detail: `${env.file}: ${count(env.keys.length, 'key')}; ${install}` };
  }
  // An example whose keys are all commented out (init's) expects no file yet: nothing to copy.
  if (env.example?.keys.length)
    return {
      name,
      ok: false,
      detail: `${env.file} not found (${env.example.file} lists ${env.example.keys.join(', ')})`,
      fix: `cp ${env.example.file} ${env.file} and fill in the values; ${install}`,
    };
  if (dotenv !== 'none')
    return {
      name,
      ok: false,
      detail: `${env.file} not found, but the live release reads .env: the next deploy would ship none`,
      fix: `put the environment's values back in ${env.file}; ${install}`,
    };
  const expected = env.example ? `${env.example.file} lists no keys` : `no ${env.file}.example`;
  return { name, ok: 'skipped', detail: `no ${env.file} (none expected: ${expected})` };
}
