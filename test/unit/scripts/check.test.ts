// check's one script and its verdicts (tasks/scripts/check.ts): the real script run by bash on a temp
// deploy root, and each verdict's ✓ / ✗ with its fix.
import { mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type CheckedHost, checkScript, checkVerdicts, parseCheck, sshFix } from '../../../tasks/scripts/check.js';
import type { ResolvedConfig } from '../../../tasks/config/types.js';
import { A, bash, SAMPLE, scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('check');
const releaseId = '2026.01.01-00.00.00-0000000';
const OWNER = {
  user: 'ann',
  machine: 'laptop',
  pid: 42,
  task: 'deploy',
  startedAt: '2026-01-01T00:00:00Z',
  token: 't',
};

describe('checkScript, run by bash on a deploy root', () => {
  it('a marked root, a lock held for a while, a live release whose .env leads nowhere', () => {
    const root = path.join(freshDir(), "deploy root's");
    mkdirSync(path.join(root, 'releases', A), { recursive: true });
    writeFileSync(path.join(root, '.slipway-root'), 'mark\n');
    symlinkSync(`releases/${A}`, path.join(root, 'current'));
    symlinkSync('../../shared/.env', path.join(root, 'releases', A, '.env'));
    mkdirSync(path.join(root, 'deploy.lock'));
    writeFileSync(path.join(root, 'deploy.lock.owner'), `${JSON.stringify(OWNER)}\n`);
    const old = new Date(Date.now() - 120_000);
    utimesSync(path.join(root, 'deploy.lock'), old, old);
    const result = bash(checkScript(root, 'node', undefined, releaseId).text);
    expect(result.code, result.stderr).toBe(0);
    const found = parseCheck(result.stdout);
    expect(found).toMatchObject({ root: 'marked', dotenv: 'dangling', lock: { owner: OWNER } });
    expect(found.lock!.ageSeconds).toBeGreaterThanOrEqual(119);
    expect(found.state.live).toBe(A);
    expect(found.npm).toMatch(/^\d+\./);
  });

  it('a folder slipway did not make; a missing one', () => {
    const dir = freshDir();
    writeFileSync(path.join(dir, 'index.html'), 'mine');
    expect(parseCheck(bash(checkScript(dir, 'none', undefined, releaseId).text).stdout)).toMatchObject({
      root: 'foreign',
      lock: null,
      dotenv: 'none',
    });
    expect(parseCheck(bash(checkScript(path.join(dir, 'new'), 'none', undefined, releaseId).text).stdout).root).toBe(
      'missing',
    );
  });
});

describe('verdicts', () => {
  const found = (over: Partial<CheckedHost> = {}): CheckedHost => ({
    ...parseCheck(`${SAMPLE}\n@@user deploy`),
    root: 'marked',
    lock: null,
    npm: '10.8.2',
    venv: false,
    dotenv: 'none',
    ...over,
  });
  const config = {
    services: undefined,
    application: 'hello',
    dependencies: { type: 'node' as const },
    healthcheck: undefined,
    port: 8080,
    vars: {},
    artifacts: undefined as ResolvedConfig['artifacts'],
  };
  const env = { file: '.env.production', keys: ['API_TOKEN'] };
  const verdicts = (f: CheckedHost, c: Partial<typeof config> = {}) =>
    checkVerdicts({
      config: { ...config, ...c },
      address: 'deploy@web1:22',
      root: '/srv/hello',
      releaseId,
      found: f,
      env,
    });
  const byName = (list: ReturnType<typeof verdicts>, name: string) => list.find((v) => v.name === name)!;

  it('all well: ✓ ssh, deploy root, lock, runtime, .env; · no health check', () => {
    const list = verdicts(found());
    expect(list.map((v) => [v.name, v.ok])).toEqual([
      ['ssh', true],
      ['deploy root', true],
      ['lock', true],
      ['runtime', true],
      ['health check URL', 'skipped'],
      ['.env file', true],
    ]);
    expect(byName(list, 'runtime').detail).toBe('node v20.19.0, npm 10.8.2');
  });

  it('a lock held now is ✗ with how to remove it; a stale one is ✓ (the next deploy takes it over)', () => {
    const held = byName(verdicts(found({ lock: { owner: OWNER, ageSeconds: 5 } })), 'lock');
    expect(held).toMatchObject({ ok: false, detail: expect.stringContaining('held by ann@laptop (deploy, pid 42') });
    expect(held.fix).toContain('`unlock` removes the lock');
    expect(byName(verdicts(found({ lock: { owner: OWNER, ageSeconds: 600 } })), 'lock')).toMatchObject({ ok: true });
  });

  it('no npm, no python venv, a folder not slipway’s, not writable: ✗ each with its fix', () => {
    const noNpm = byName(verdicts(found({ npm: '' })), 'runtime');
    expect(noNpm).toMatchObject({ ok: false, detail: 'dependencies: node, but npm not found' });
    expect(noNpm.fix).toContain('apt-get install nodejs npm');
    const python = byName(verdicts(found(), { dependencies: { type: 'python' as never } }), 'runtime');
    expect(python).toMatchObject({ ok: false, fix: 'install them on the host (apt-get install python3 python3-venv)' });
    const foreign = byName(verdicts(found({ root: 'foreign' })), 'deploy root');
    expect(foreign).toMatchObject({
      ok: false,
      fix: expect.stringContaining('point deployTo at a new or empty folder'),
    });
    const state = { ...found().state, writable: false };
    const notWritable = byName(verdicts(found({ state })), 'deploy root');
    expect(notWritable.fix).toMatch(/^run `setup` .*, or as root: install -d -o deploy -g deploy \/srv\/hello/);
  });

  it('prebuilt artifacts: node without npm is ✓ (nothing is installed on the host); node missing is still ✗', () => {
    const artifacts = { dependencies: 'prebuilt' } as ResolvedConfig['artifacts'];
    const prebuilt = byName(verdicts(found({ npm: '' }), { artifacts }), 'runtime');
    expect(prebuilt).toMatchObject({
      ok: true,
      detail: expect.stringMatching(/^node v20\.19\.0; no npm, none needed/),
    });
    const state = { ...found().state, runtime: { ...found().state.runtime, node: '' } };
    expect(byName(verdicts(found({ npm: '', state }), { artifacts }), 'runtime')).toMatchObject({ ok: false });
  });

  it('the live release reading a shared/.env that is gone: ✗ shared/.env, deploy again', () => {
    const list = verdicts(found({ dotenv: 'dangling' }));
    expect(byName(list, 'shared/.env')).toMatchObject({ ok: false, fix: expect.stringContaining('deploy again') });
  });
});

describe('sshFix', () => {
  it('says what to do per kind of connection failure', () => {
    expect(sshFix('web1: cannot connect to a@b:22: unknown host key for b: ssh-ed25519 SHA256:x', 'a')).toContain(
      '--trust-new-hosts',
    );
    expect(sshFix('HOST KEY CHANGED for b', 'a')).toContain('otherwise do not connect');
    expect(sshFix('All configured authentication methods failed', 'deploy')).toMatch(/^deploy or its key .*`setup`/);
    expect(sshFix('connect ECONNREFUSED 127.0.0.1:22', 'a')).toContain('is sshd running');
  });
});
