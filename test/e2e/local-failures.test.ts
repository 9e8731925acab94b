// Failures on the local target: whatever goes wrong, the live release is untouched and the next deploy works.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeProject, waitForOutput } from '../helpers/project.js';

function exitOf(child: import('node:child_process').ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.on('close', (code, signal) => resolve(code ?? (signal ? -1 : null))));
}

describe('failures on the local target', () => {
  const project = makeProject();
  afterAll(() => project.cleanup());

  it('two deploys started at the same moment: one succeeds, the other names the lock holder', async () => {
    const [a, b] = await Promise.all([project.run(['deploy']), project.run(['deploy'])]);
    const codes = [a.code, b.code].sort();
    expect(codes).toEqual([0, 1]);
    const loser = a.code === 1 ? a : b;
    expect(loser.stderr).toMatch(/deploy in progress by \S+@\S+ \(pid \d+\) since/);
    expect(project.releases()).toHaveLength(1);
    expect(project.live()).toBe(project.releases()[0]);
  });

  it('a failing npm ci: exit 1 with the installer output, current unchanged, no partial release, tmp empty', async () => {
    const live = project.live();
    const before = project.releases();
    project.commit({
      'package.json': JSON.stringify({ name: 'hello', version: '1.0.0', dependencies: { ms: '99.99.99' } }),
      'package-lock.json': JSON.stringify({
        name: 'hello', version: '1.0.0', lockfileVersion: 3, requires: true,
        packages: { '': { name: 'hello', version: '1.0.0', dependencies: { ms: '99.99.99' } }, 'node_modules/ms': { version: '99.99.99' } },
      }),
    }, 'broken lockfile');
    const result = await project.run(['deploy']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('dependency install failed on local');
    expect(result.stderr).toMatch(/npm (error|ERR)/);
    expect(project.live()).toBe(live);
    expect(project.releases()).toEqual(before);
    expect(readdirSync(path.join(project.deployTo, 'tmp'))).toEqual([]);
    expect(readdirSync(path.join(project.deployTo, 'envs')).filter((e) => e.startsWith('.build'))).toEqual([]);
    project.commit({ 'package.json': readFileSync(path.join(import.meta.dirname, '../../examples/hello/package.json'), 'utf8'), 'package-lock.json': readFileSync(path.join(import.meta.dirname, '../../examples/hello/package-lock.json'), 'utf8') }, 'fixed');
  });

  it('--keep-failed keeps the failed work outside releases/', async () => {
    writeFileSync(project.configFile, readFileSync(project.configFile, 'utf8').replace('"shared"', '"hooks": { "beforeSwitch": [{ "name": "fails", "commands": ["echo about to fail", "exit 3"] }] },\n  "shared"'));
    const result = await project.run(['deploy', '--keep-failed']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('hook "fails" failed');
    const kept = readdirSync(path.join(project.deployTo, 'tmp'));
    expect(kept).toHaveLength(1);
    expect(kept[0]).toMatch(/^failed-/);
    expect(existsSync(path.join(project.deployTo, 'tmp', kept[0], 'server.js'))).toBe(true);
    expect(project.releases()).toHaveLength(1);
    writeFileSync(project.configFile, readFileSync(project.configFile, 'utf8').replace(/"hooks": .*\n\s*/, ''));
  });

  it('an after-switch hook failing rolls back automatically and marks the release bad', async () => {
    const live = project.live();
    const good = readFileSync(project.configFile, 'utf8');
    writeFileSync(project.configFile, good.replace('"shared"', '"hooks": { "afterSwitch": [{ "name": "smoke", "commands": ["exit 4"] }] },\n  "shared"'));
    const result = await project.run(['deploy']);
    writeFileSync(project.configFile, good);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/failed after the switch and was rolled back automatically[\s\S]*hook "smoke" failed/);
    expect(project.live()).toBe(live);
    const bad = project.releases().find((id) => JSON.parse(readFileSync(path.join(project.deployTo, 'releases', id, '.slipway/release.json'), 'utf8')).status === 'bad');
    expect(bad).toBeDefined();
    expect((await project.run(['rollback:current'])).code).toBe(0);
    expect(project.live()).toBe(live); // the newest good release, not the bad one
  });

  it('an unknown ref exits 2 naming it; nothing on the host changes', async () => {
    const before = project.releases();
    const result = await project.run(['deploy', '--ref', 'no-such-branch']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown ref "no-such-branch"');
    expect(project.releases()).toEqual(before);
  });

  it('an unknown task exits 2 listing the tasks; an unknown option exits 2', async () => {
    const task = await project.run(['deploi']);
    expect(task.code).toBe(2);
    expect(task.stderr).toContain('unknown task "deploi"; tasks: deploy, rollback');
    const option = await project.run(['--frobnicate', 'deploy']);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain("Unknown option '--frobnicate'");
  });

  it('an invalid config exits 2 naming every bad key path', async () => {
    const good = readFileSync(project.configFile, 'utf8');
    writeFileSync(project.configFile, JSON.stringify({ ...JSON.parse(good), keepReleases: 0, colour: 'blue', application: 'Bad Name' }));
    const result = await project.run(['deploy']);
    writeFileSync(project.configFile, good);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('keepReleases');
    expect(result.stderr).toContain('colour: unknown key');
    expect(result.stderr).toContain('application');
  });

  it('a deploy killed with SIGKILL after its upload leaves no partial release; the next deploy recovers the lock and succeeds', async () => {
    const live = project.live();
    const before = project.releases();
    const child = project.start(['deploy'], { SLIPWAY_FAULT: 'kill:after:upload' });
    expect([137, -1]).toContain(await exitOf(child)); // SIGKILL, as relayed by tsx's parent process
    expect(project.live()).toBe(live);
    expect(existsSync(path.join(project.deployTo, 'deploy.lock'))).toBe(true);
    const next = await project.run(['deploy']);
    expect(next.code, next.stderr).toBe(0);
    expect(next.stdout).toMatch(/took over a stale lock of \S+ \(pid \d+/);
    const after = project.releases();
    // The killed run's release had been published complete (upload also publishes when the environment is ready).
    for (const id of after) expect(existsSync(path.join(project.deployTo, 'releases', id, '.slipway/release.json'))).toBe(true);
    expect(after.length).toBeGreaterThan(before.length);
    expect(readdirSync(path.join(project.deployTo, 'tmp')).filter((e) => !e.startsWith('failed-'))).toEqual([]);
  });

  it('SIGINT during a step: stops, removes the unfinished release, releases the lock, exits 130', async () => {
    const live = project.live();
    const before = project.releases();
    const child = project.start(['deploy'], { SLIPWAY_FAULT: 'pause:before:switch' });
    await waitForOutput(child, /@@paused before:switch/);
    child.kill('SIGINT');
    expect(await exitOf(child)).toBe(130);
    expect(project.live()).toBe(live);
    expect(project.releases()).toEqual(before);
    expect(existsSync(path.join(project.deployTo, 'deploy.lock'))).toBe(false);
    expect((await project.run(['deploy'])).code).toBe(0);
  });

  it('secrets from .env files appear in no output, --json or revisions.log; shared/.env is 0600', async () => {
    const secret = 's3cr3t-planted-value-42';
    writeFileSync(path.join(project.dir, '.env.local'), `API_TOKEN=${secret}\n`);
    writeFileSync(path.join(project.dir, 'templates/secret.conf.hbs'), 'token={{env.API_TOKEN}}\n');
    const runs = [await project.run(['deploy']), await project.run(['--json', 'deploy']), await project.run(['--dry-run', 'deploy']), await project.run(['releases'])];
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout + r.stderr).not.toContain(secret);
    }
    expect(readFileSync(path.join(project.deployTo, 'revisions.log'), 'utf8')).not.toContain(secret);
    const mode = (await import('node:fs')).statSync(path.join(project.deployTo, 'shared/.env')).mode & 0o777;
    expect(mode).toBe(0o600);
    expect(readFileSync(path.join(project.deployTo, 'shared/.env'), 'utf8')).toContain(secret);
  });
});
