// What check tells from the config and the project alone (tasks/scripts/config-checks.ts): the health check
// URL's shape and the environment's .env file.
import { describe, expect, it } from 'vitest';
import { envVerdict, healthcheckVerdict } from '../../../tasks/scripts/config-checks.js';

describe('healthcheckVerdict: the URL as curl fetches it on each host', () => {
  const check = (url: string, vars: Record<string, string> = {}) =>
    healthcheckVerdict({
      healthcheck: { url, expectStatus: 200, timeoutSeconds: 30, successes: 2, intervalSeconds: 1 },
      port: 8080,
      vars,
    });
  it('the app, nginx, another host: ✓', () => {
    expect(check('http://127.0.0.1:8080/health').detail).toContain('on each host, the app (port)');
    expect(check('http://localhost:8081/', { listen: '127.0.0.1:8081' }).detail).toContain('nginx (vars.listen)');
    expect(check('https://example.com/health')).toMatchObject({ ok: true });
  });
  it('another scheme, credentials (on curl’s command line), a loopback port nothing listens on: ✗', () => {
    expect(check('ftp://127.0.0.1/x')).toMatchObject({ ok: false, fix: 'use an http:// or https:// URL' });
    expect(check('http://user:pw@127.0.0.1:8080/health').detail).toContain('ps shows them');
    expect(check('http://127.0.0.1:9999/health')).toMatchObject({
      ok: false,
      fix: 'point it at the app, http://127.0.0.1:8080/health, or through nginx',
    });
  });
});

describe('envVerdict', () => {
  const example = { file: '.env.production.example', keys: ['API_TOKEN', 'DATABASE_URL'] };
  it('present with every key of the example: ✓; a key missing: ✗ naming it', () => {
    const all = { file: '.env.production', keys: ['API_TOKEN', 'DATABASE_URL'], example };
    expect(envVerdict(all, 'none').ok).toBe(true);
    expect(envVerdict({ ...all, keys: ['API_TOKEN'] }, 'none')).toMatchObject({
      ok: false,
      detail: '.env.production lacks DATABASE_URL (listed in .env.production.example)',
    });
  });
  it('missing while an example exists, or while the live release reads .env: ✗; neither: skipped', () => {
    expect(envVerdict({ file: '.env.production', keys: null, example }, 'none').fix).toMatch(
      /^cp \.env\.production\.example \.env\.production/,
    );
    expect(envVerdict({ file: '.env.production', keys: null }, 'linked').ok).toBe(false);
    expect(envVerdict({ file: '.env.production', keys: null }, 'none').ok).toBe('skipped');
  });
  it("missing while the example lists no keys (init's, all commented out): skipped, not ✗ with an empty list", () => {
    const empty = { file: '.env.production.example', keys: [] };
    expect(envVerdict({ file: '.env.production', keys: null, example: empty }, 'none')).toEqual({
      name: '.env file',
      ok: 'skipped',
      detail: 'no .env.production (none expected: .env.production.example lists no keys)',
    });
    expect(envVerdict({ file: '.env.production', keys: null, example: empty }, 'linked').ok).toBe(false);
  });
});
