// Redaction (Log), the tail of a failed command (CommandFailed), the bad mark's reason (markBadScript),
// a template's error and secret detection (renderTemplates), and a stale config temp file
// (installConfigsScript): secrets in every form they take, never in output, files or command lines.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { ResolvedConfig } from '../../tasks/config/types.js';
import { CommandFailed } from '../../tasks/hosts/host.js';
import { Log } from '../../tasks/lib/log.js';
import type { Release } from '../../tasks/release/archive.js';
import { markBadScript } from '../../tasks/scripts/release.js';
import { installConfigsScript } from '../../tasks/scripts/services.js';
import { renderTemplates } from '../../tasks/release/templates.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'slipway-secrets-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

const pem = '-----BEGIN PRIVATE KEY-----\nMIIEvQunitPEMline1AAAA\nBBBBunitPEMline2BBBB\n-----END PRIVATE KEY-----';

/** What the log printed, collected from stdout and stderr. */
function printed(fn: () => void): string {
  let text = '';
  const collect = (chunk: unknown) => ((text += String(chunk)), true);
  vi.spyOn(process.stdout, 'write').mockImplementation(collect);
  vi.spyOn(process.stderr, 'write').mockImplementation(collect);
  fn();
  vi.restoreAllMocks();
  return text;
}

describe('Log redaction', () => {
  const log = new Log({ json: false, secrets: ['p@ss/w0rd-unit', 'postgres://app:url-pa55-unit@db/app', pem, 'abc'] });

  it('a secret inside a longer string, URL-encoded, and a URL\'s password on its own', () => {
    expect(log.redact('url=postgres://app:p@ss/w0rd-unit@db')).toBe('url=postgres://app:***@db');
    expect(log.redact('url=postgres://app:p%40ss%2Fw0rd-unit@db')).toBe('url=postgres://app:***@db');
    expect(log.redact('password=url-pa55-unit')).toBe('password=***');
  });

  it('a multi-line secret whole, each of its lines alone, and its JSON form', () => {
    expect(log.redact(`key=${pem}\nnext`)).toBe('key=***\nnext');
    expect(log.redact('tail: BBBBunitPEMline2BBBB\n-----END PRIVATE KEY-----')).toBe('tail: ***\n***');
    expect(log.redact(`{"key": ${JSON.stringify(pem)}}`)).toBe('{"key": "***"}');
  });

  it('detail() redacts a multi-line secret that spans the lines it prints', () => {
    const text = printed(() => log.detail('web1', `would run:\nkey=${pem}\ndone`));
    expect(text).toContain('key=***');
    expect(text).not.toMatch(/unitPEMline|PRIVATE KEY/);
  });

  it('values under 4 characters are not redacted (they would hide unrelated text)', () => {
    expect(log.redact('abc abcd')).toBe('abc abcd');
  });
});

describe('CommandFailed', () => {
  new Log({ json: false, secrets: [pem] });

  it('redacts before it keeps the last 15 lines, so a cut never shows part of a secret', () => {
    const stderr = `${pem}\n${Array.from({ length: 13 }, (_, i) => `line ${i + 1}`).join('\n')}\n`;
    const error = new CommandFailed('web1', 'hook "x"', { code: 3, stdout: '', stderr });
    expect(error.message).toMatch(/line 13$/);
    expect(error.message).not.toMatch(/unitPEMline|PRIVATE KEY/);
  });
});

describe('markBadScript', () => {
  const release = { id: '2026.01.01-00.00.00-abcdef0', archive: { ref: 'main', commit: 'abcdef0123' } } as unknown as Release;

  it('keeps the reason off the command line (it comes on stdin), redacted before it is cut to 300 characters', () => {
    new Log({ json: false, secrets: ['reason-s3cret-unit-value'] });
    const reason = `${'x'.repeat(290)} reason-s3cret-unit-value`;
    const mark = markBadScript('/srv/app', release, null, reason);
    expect(mark.script.text).not.toContain('xxxx');
    const meta = JSON.parse(mark.stdin);
    expect(meta.reason).toBe(`${'x'.repeat(290)} ***`);
    const root = path.join(scratch, 'mark');
    mkdirSync(path.join(root, 'releases', release.id, '.slipway'), { recursive: true });
    const onDisk = markBadScript(root, release, null, 'why');
    const run = spawnSync('bash', ['-c', onDisk.script.text], { input: onDisk.stdin });
    expect(run.status, String(run.stderr)).toBe(0);
    const written = readFileSync(path.join(root, 'releases', release.id, '.slipway/release.json'), 'utf8');
    expect(JSON.parse(written)).toMatchObject({ status: 'bad', reason: 'why' });
  });
});

describe('renderTemplates', () => {
  const dir = path.join(scratch, 'templates');
  mkdirSync(dir);
  const config = {
    application: 'hello', environment: 'local', port: 8080, serverName: 'localhost', vars: {}, env: { PEM: pem, TOKEN: 'tok-unit-value' },
    templates: { dir, nginx: false, supervisor: false }, projectRoot: scratch,
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
    expect((error as Error).message).toMatch(/^template templates\/app\.conf\.hbs, line 2: variable "env\.DATABASE_URL" is not defined/);
    expect((error as Error).message).not.toContain('[object Object]');
    expect((error as Error).message).not.toContain('tok-unit-value');
  });

  it('a template that holds a secret in a transformed form ({{json env.X}}) is marked secret', async () => {
    writeFileSync(path.join(dir, 'key.json.hbs'), '{ "key": {{json env.PEM}} }\n');
    writeFileSync(path.join(dir, 'plain.conf.hbs'), 'port={{port}}\n');
    const files = await renderTemplates(config, host, 'r1');
    expect(files.map((f) => [f.name, f.secret])).toEqual([['key.json', true], ['plain.conf', false]]);
  });
});

describe('installConfigsScript', () => {
  it('a stale <target>.slipway-new (0644) left by a dead run does not make a private config world-readable', () => {
    const root = path.join(scratch, 'services');
    const id = '2026.01.01-00.00.00-abc1234';
    mkdirSync(path.join(root, `releases/${id}/.slipway`), { recursive: true });
    mkdirSync(path.join(root, 'etc'));
    const site = path.join(root, 'etc/site.conf');
    writeFileSync(path.join(root, `releases/${id}/.slipway/nginx.conf`), 'secret site\n', { mode: 0o600 });
    writeFileSync(`${site}.slipway-new`, 'stale\n');
    chmodSync(`${site}.slipway-new`, 0o644);
    const services = { sudo: '', nginx: { site, enabled: path.join(root, 'etc/enabled.conf'), test: 'true', reload: 'true' } };
    const run = spawnSync('bash', ['-c', installConfigsScript(services, root, id).text]);
    expect(run.status, String(run.stderr)).toBe(0);
    expect(readFileSync(site, 'utf8')).toBe('secret site\n');
    expect(statSync(site).mode & 0o777).toBe(0o600);
  });
});
