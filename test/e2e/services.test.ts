// Serving for real on the local target: nginx and supervisord run by the harness, configs installed
// and validated by the deploy, health-checked, rolled back automatically when the release fails.
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, releaseIdOf } from '../helpers/project.js';
import { deployRejectedSite, type ServiceStack, startServiceStack } from '../helpers/services.js';

let stack: ServiceStack;
let project: Project;

const serverJs = () => readFileSync(path.join(project.dir, 'app/server.js'), 'utf8');

beforeAll(async () => {
  stack = await startServiceStack();
  project = makeProject({ format: 'json', config: stack.deployConfig() });
});
afterAll(async () => {
  await stack?.stop();
  project?.cleanup();
});

describe('services on the local target', () => {
  let good: string;

  it('deploy: the new release answers through nginx, health-checked', async () => {
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    good = releaseIdOf(result.stdout);
    expect(result.stdout).toMatch(/configs .*installed nginx, supervisor \(validated\)/);
    expect(result.stdout).toMatch(/health .*answered 200/);
    expect(await stack.answer(good)).toContain(`hello from release ${good}`);
  });

  it(
    'a release whose app crashes at start: health check fails, ' +
      'the old release is live and answering again, exit 1',
    async () => {
      const original = serverJs();
      project.commit({ 'server.js': `process.exit(3);\n${original}` }, 'crash at start');
      const result = await project.run(['deploy']);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/rolled back automatically/);
      expect(result.stdout).toMatch(/auto-rollback .*back on /);
      expect(project.live()).toBe(good);
      expect(await stack.answer(good)).toContain(`hello from release ${good}`);
      const list = await project.run(['releases']);
      expect(list.stdout).toMatch(/BAD: /);
      project.commit({ 'server.js': original }, 'fixed');
    },
  );

  it(
    'a site nginx rejects is refused before the switch; ' +
      'the previous site file stays; nginx serves the old release',
    async () => {
      const site = (stack.services.nginx as { site: string }).site;
      const before = readFileSync(site, 'utf8');
      await deployRejectedSite(project);
      expect(readFileSync(site, 'utf8')).toBe(before);
      expect(project.live()).toBe(good);
      expect(await stack.answer(good)).toContain(good);
    },
  );

  it('rollback: the older release answers; rollback:current: the newest again; a bad release is skipped', async () => {
    const deployed = await project.run(['deploy']);
    expect(deployed.code, deployed.stderr).toBe(0);
    const newest = releaseIdOf(deployed.stdout);
    expect(await stack.answer(newest)).toContain(newest);
    const back = await project.run(['rollback']);
    expect(back.code, back.stderr).toBe(0);
    // The crashed release lies between the two and is marked bad: rollback goes past it.
    expect(project.live()).toBe(good);
    expect(await stack.answer(good)).toContain(good);
    expect((await project.run(['rollback:current'])).code).toBe(0);
    expect(await stack.answer(newest)).toContain(newest);
  });

  it(
    'a program rendered with a secret from .env is installed ' +
      'private (0600) and still runs; without one it is 0644 again',
    async () => {
      const template = path.join(project.dir, 'templates/supervisor.conf.hbs');
      const original = readFileSync(template, 'utf8');
      const program = (stack.services.supervisor as { program: string }).program;
      writeFileSync(path.join(project.dir, '.env'), 'API_TOKEN=tok-planted-1234\n');
      writeFileSync(
        template,
        original.replace('NODE_ENV="production"', 'NODE_ENV="production",API_TOKEN="{{env.API_TOKEN}}"'),
      );
      try {
        const result = await project.run(['deploy']);
        expect(result.code, result.stderr + result.stdout).toBe(0);
        expect(readFileSync(program, 'utf8')).toContain('tok-planted-1234');
        expect(statSync(program).mode & 0o777).toBe(0o600);
        expect(await stack.answer(releaseIdOf(result.stdout))).toContain('hello from release');
      } finally {
        writeFileSync(template, original);
        rmSync(path.join(project.dir, '.env'));
      }
      expect((await project.run(['deploy'])).code).toBe(0);
      expect(statSync(program).mode & 0o777).toBe(0o644);
    },
  );

  it(
    'a program whose command cannot be started: the deploy names that command and what supervisor ' +
      'meant (not only "ERROR (no such file)")',
    async () => {
      const template = path.join(project.dir, 'templates/supervisor.conf.hbs');
      const original = readFileSync(template, 'utf8');
      writeFileSync(template, original.replace(/^command=.*$/m, 'command=no-such-runtime server.js'));
      try {
        const result = await project.run(['deploy']);
        expect(result.code).toBe(1);
        expect(result.stderr).toContain('its command (.slipway/supervisor.conf): no-such-runtime server.js');
        expect(result.stderr).toContain(
          'supervisor found no such program: install it on the host, or give its absolute',
        );
      } finally {
        writeFileSync(template, original);
      }
      expect((await project.run(['deploy'])).code).toBe(0);
    },
  );

  it('`status` shows supervisor, nginx and health per host; `restart` restarts the program', async () => {
    const status = await project.run(['status']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/supervisor: hello\s+RUNNING/);
    expect(status.stdout).toContain('nginx: config ok');
    expect(status.stdout).toContain('health: ok');
    const pid = (text: string) => /RUNNING\s+pid (\d+)/.exec(text)?.[1];
    const restart = await project.run(['restart']);
    expect(restart.code, restart.stderr).toBe(0);
    const after = await project.run(['status']);
    expect(pid(after.stdout)).toBeDefined();
    expect(pid(after.stdout)).not.toBe(pid(status.stdout));
  });
});
