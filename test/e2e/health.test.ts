// Health that means it, against a real nginx and supervisord: a release must keep answering (the same
// process, RUNNING in supervisor) before a deploy trusts it; a program that fails shows its stderr;
// `status` fails when something is down; a rollback returns only once the release it went back to answers.
import { execSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, releaseIdOf } from '../helpers/project.js';
import { type ServiceStack, startServiceStack } from '../helpers/services.js';

let stack: ServiceStack;
let project: Project;
let original: string;

beforeAll(async () => {
  stack = await startServiceStack();
  project = makeProject({ config: stack.deployConfig() });
  original = readFileSync(path.join(project.dir, 'app/server.js'), 'utf8');
});
afterAll(async () => {
  await stack?.stop();
  project?.cleanup();
});

const healthcheck = () => stack.deployConfig().healthcheck as Record<string, unknown>;

describe('health checks against real nginx and supervisord', () => {
  let good: string;

  it('a first good release', async () => {
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    good = releaseIdOf(result.stdout);
    expect(result.stdout).toMatch(/health .*answered 200 2 times in a row; hello RUNNING pid \d+/);
  });

  it('status: with the program stopped it exits 1 and marks supervisor and health ✗, nginx ✓', async () => {
    execSync(`${stack.supervisorctl} stop hello`);
    try {
      const status = await project.run(['status']);
      expect(status.code, status.stdout + status.stderr).toBe(1);
      const output = status.stdout + status.stderr;
      expect(output).toMatch(/✗ supervisor: hello\s+STOPPED/);
      expect(output).toMatch(/✗ health: FAILED/);
      expect(output).toMatch(/✓ nginx: config ok/);
    } finally {
      execSync(`${stack.supervisorctl} start hello`);
    }
    const again = await project.run(['status']);
    expect(again.code, again.stdout + again.stderr).toBe(0);
  });

  it(
    'a release that crashes 3 s after starting fails the health check (successes 2, ' +
      'every 4 s) and is rolled back, exit 1',
    async () => {
      project.writeConfig({ healthcheck: { ...healthcheck(), successes: 2, intervalSeconds: 4, timeoutSeconds: 12 } });
      project.commit({ 'server.js': `setTimeout(() => process.exit(3), 3000);\n${original}` }, 'crash after 3 s');
      try {
        const result = await project.run(['deploy']);
        expect(result.code, result.stdout + result.stderr).toBe(1);
        expect(result.stderr).toMatch(/health check failed/);
        expect(result.stderr).toMatch(/rolled back automatically/);
        expect(project.live()).toBe(good);
        expect(await stack.answer(good)).toContain(`hello from release ${good}`);
      } finally {
        project.writeConfig();
        project.commit({ 'server.js': original }, 'fixed');
      }
    },
  );

  it('a program that fails to start: the deploy shows the last lines of its stderr log', async () => {
    project.commit(
      { 'server.js': `console.error('boom: DATABASE_URL is not set');\nprocess.exit(3);\n${original}` },
      'fails at start',
    );
    const result = await project.run(['deploy']);
    project.commit({ 'server.js': original }, 'fixed');
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stderr).toMatch(/stderr/);
    expect(result.stderr).toContain('boom: DATABASE_URL is not set');
    expect(project.live()).toBe(good);
  });

  let slow: string;
  let slower: string;

  it('rollback and the automatic rollback return only once the release they went back to answers', async () => {
    // Listens 2 s after it starts: supervisor calls it RUNNING after 1 s, before it answers.
    const slowStart = `await new Promise((resolve) => setTimeout(resolve, 2000));\n${original}`;
    project.commit({ 'server.js': slowStart }, 'slow start');
    const first = await project.run(['deploy']);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    slow = releaseIdOf(first.stdout);
    project.commit({ 'server.js': `// the second one\n${slowStart}` }, 'slow start again');
    const second = await project.run(['deploy']);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    slower = releaseIdOf(second.stdout);

    const back = await project.run(['rollback']);
    expect(back.code, back.stdout + back.stderr).toBe(0);
    expect(project.live()).toBe(slow);
    // One request, no retry: it must be answered by the release the rollback went back to.
    const right = await stack.get('/');
    expect(right.status, right.body).toBe(200);
    expect(right.body).toContain(slow);

    const forward = await project.run(['rollback:current']);
    expect(forward.code, forward.stdout + forward.stderr).toBe(0);
    project.commit({ 'server.js': `process.exit(3);\n${original}` }, 'crash at start');
    const failed = await project.run(['deploy']);
    expect(failed.code, failed.stdout + failed.stderr).toBe(1);
    expect(failed.stdout).toMatch(/auto-rollback .*back on .*answered 200/);
    expect(project.live()).toBe(slower);
    const after = await stack.get('/');
    expect(after.status, after.body).toBe(200);
    expect(after.body).toContain(slower);
    project.commit({ 'server.js': original }, 'fixed');
  });

  it('a rollback to a release that does not come back healthy exits 1 saying so; that release is live', async () => {
    const file = path.join(project.deployTo, 'releases', slow, 'server.js');
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace(
        "if (req.url === '/health') {",
        "if (req.url === '/health') {\n    res.statusCode = 500;",
      ),
    );
    const back = await project.run(['rollback']);
    expect(back.code, back.stdout + back.stderr).toBe(1);
    expect(back.stderr).toContain(`went back to ${slow} on local, but it did not come back healthy`);
    expect(back.stderr).toMatch(/answered 500 \(expected 200/);
    expect(project.live()).toBe(slow);
  });
});
