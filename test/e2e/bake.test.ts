// rollout.bakeSeconds on the local target with real nginx and supervisord: a release that dies 2 s after
// starting passes its health check (one good answer) and is caught by the bake, then rolled back.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, releaseIdOf } from '../helpers/project.js';
import { type ServiceStack, startServiceStack } from '../helpers/services.js';

let stack: ServiceStack;
let project: Project;

beforeAll(async () => {
  stack = await startServiceStack();
  const config = stack.deployConfig();
  // One good answer passes the health check: what catches the crash is the bake.
  const healthcheck = { ...(config.healthcheck as object), successes: 1 };
  project = makeProject({ format: 'json', config: { ...config, healthcheck, rollout: { bakeSeconds: 6 } } });
}, 60_000);
afterAll(async () => {
  await stack?.stop();
  project?.cleanup();
});

describe('bakeSeconds', () => {
  let good: string;

  it('a healthy release stays healthy through the bake', async () => {
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    good = releaseIdOf(result.stdout);
    expect(result.stdout).toMatch(/bake .*stayed healthy for 6s \(\d+ answers\)/);
    expect(await stack.answer(good)).toContain(good);
  }, 60_000);

  it('a release that dies 2 s after starting: health check passes, the bake fails it, the old release is back', async () => {
    const original = readFileSync(path.join(project.dir, 'app/server.js'), 'utf8');
    project.commit({ 'server.js': `setTimeout(() => process.exit(3), 2000);\n${original}` }, 'dies after 2 s');
    const result = await project.run(['deploy']);
    expect(result.code, result.stdout).toBe(1);
    const id = releaseIdOf(result.stdout);
    expect(result.stdout).toMatch(/health .*answered 200/);
    expect(result.stderr).toMatch(/unhealthy \d+s into the bake: /);
    expect(result.stderr).toMatch(/rolled back automatically/);
    expect(project.live()).toBe(good);
    expect(await stack.answer(good)).toContain(good);
    const status = JSON.parse(
      readFileSync(path.join(project.deployTo, 'releases', id, '.slipway/release.json'), 'utf8'),
    );
    expect(status.status).toBe('bad');
    project.commit({ 'server.js': original }, 'fixed');
  }, 90_000);
});
