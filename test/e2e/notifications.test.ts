// hooks.onSuccess / hooks.onFailure: run after a deploy on the deployer (in the project's folder) and on the hosts
// (in the deploy root), with the SLIPWAY_* variables README documents; a failing notification is a warning and
// never changes the deploy's exit code or live release.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, releaseIdOf } from '../helpers/project.js';

/** The SLIPWAY_* variables a notification saw, written by its command as `env` prints them. */
const varsIn = (file: string) =>
  Object.fromEntries(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('SLIPWAY_'))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );

const record = (name: string) => `env | grep '^SLIPWAY_' | grep -v '^SLIPWAY_REASON' > "$OUT/${name}.env"`;

describe('notifications', () => {
  let project: Project;
  let out: string;
  const hooks = (extra: Record<string, unknown> = {}) => ({
    onSuccess: [
      { name: 'chat', env: { OUT: out }, commands: [record('success')] },
      { name: 'host-mark', on: 'hosts', commands: [`${record('host-success').replace('$OUT/', '')}`] },
    ],
    onFailure: [
      { name: 'chat', env: { OUT: out }, commands: [record('failure'), 'printf %s "$SLIPWAY_REASON" > "$OUT/reason"'] },
    ],
    ...extra,
  });
  beforeAll(() => {
    project = makeProject({ format: 'json', config: { dependencies: { type: 'none' } } });
    out = project.dir;
    project.writeConfig({ hooks: hooks() });
  });
  afterAll(() => project?.cleanup());

  it('onSuccess runs on the deployer and on the hosts with application, environment, releases and deployer', async () => {
    const first = await project.run(['deploy']);
    expect(first.code, first.stderr).toBe(0);
    const firstId = releaseIdOf(first.stdout);
    expect(varsIn(path.join(out, 'success.env'))).toMatchObject({
      SLIPWAY_APPLICATION: 'hello',
      SLIPWAY_ENVIRONMENT: 'local',
      SLIPWAY_TASK: 'deploy',
      SLIPWAY_OUTCOME: 'success',
      SLIPWAY_RELEASE: firstId,
      SLIPWAY_PREVIOUS_RELEASE: '',
      SLIPWAY_LIVE: firstId,
      SLIPWAY_REF: 'HEAD',
      SLIPWAY_HOSTS: 'local',
      SLIPWAY_DEPLOYER: `${userInfo().username}@${hostname()}`,
    });
    const second = await project.run(['deploy']);
    expect(second.code, second.stderr).toBe(0);
    const secondId = releaseIdOf(second.stdout);
    expect(varsIn(path.join(out, 'success.env'))).toMatchObject({
      SLIPWAY_RELEASE: secondId,
      SLIPWAY_PREVIOUS_RELEASE: firstId,
      SLIPWAY_LIVE: secondId,
    });
    // On the host: in its deploy root.
    expect(varsIn(path.join(project.deployTo, 'host-success.env'))).toMatchObject({
      SLIPWAY_RELEASE: secondId,
      SLIPWAY_PREVIOUS_RELEASE: firstId,
    });
    expect(existsSync(path.join(out, 'failure.env'))).toBe(false);
  });

  it('a failing deploy runs onFailure with the reason (secrets redacted), and not onSuccess', async () => {
    const live = project.live();
    rmSync(path.join(out, 'success.env'));
    project.writeConfig({
      hooks: hooks({
        beforeSwitch: [{ name: 'build', commands: ['echo "build broke, token s3cr3t-t0ken-value" >&2', 'exit 3'] }],
      }),
    });
    writeFileSync(path.join(project.dir, '.env.local'), 'API_TOKEN=s3cr3t-t0ken-value\n');
    try {
      const result = await project.run(['deploy']);
      expect(result.code).toBe(1);
      expect(project.live()).toBe(live);
      const vars = varsIn(path.join(out, 'failure.env'));
      expect(vars).toMatchObject({ SLIPWAY_OUTCOME: 'failure', SLIPWAY_PREVIOUS_RELEASE: live, SLIPWAY_LIVE: live });
      expect(vars.SLIPWAY_RELEASE).toMatch(/^\d{4}\.\d\d\.\d\d-/);
      expect(vars.SLIPWAY_RELEASE).not.toBe(live);
      const reason = readFileSync(path.join(out, 'reason'), 'utf8');
      expect(reason).toContain('hook "build" failed on local (exit 3)');
      expect(reason).toContain('build broke, token ***');
      expect(reason).not.toContain('s3cr3t');
      expect(existsSync(path.join(out, 'success.env'))).toBe(false);
    } finally {
      rmSync(path.join(project.dir, '.env.local'));
    }
  });

  it('a failing onSuccess is a warning: exit 0, the new release live; a failing onFailure leaves exit 1', async () => {
    project.writeConfig({ hooks: { onSuccess: [{ name: 'chat', commands: ['echo chat is down >&2', 'exit 7'] }] } });
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr).toBe(0);
    expect(project.live()).toBe(releaseIdOf(result.stdout));
    expect(result.stdout).toContain('deployer chat is down');
    expect(result.stdout).toContain(
      `warning: notification "chat" failed on deployer (exit 7); the deploy's outcome stands`,
    );
    const live = project.live();
    project.writeConfig({
      hooks: {
        beforeSwitch: [{ name: 'build', commands: ['exit 3'] }],
        onFailure: [{ name: 'chat', commands: ['exit 9'] }],
      },
    });
    const failed = await project.run(['deploy']);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain('notification "chat" failed on deployer (exit 9)');
    expect(project.live()).toBe(live);
  });

  it('a rollback notifies too, naming the task, the release left and the one live now', async () => {
    project.writeConfig({ hooks: hooks() });
    const newest = project.live();
    const result = await project.run(['rollback']);
    expect(result.code, result.stderr).toBe(0);
    const back = project.live();
    expect(back).not.toBe(newest);
    expect(varsIn(path.join(out, 'success.env'))).toMatchObject({
      SLIPWAY_TASK: 'rollback',
      SLIPWAY_OUTCOME: 'success',
      SLIPWAY_RELEASE: '',
      SLIPWAY_PREVIOUS_RELEASE: newest,
      SLIPWAY_LIVE: back,
    });
    const current = await project.run(['rollback:current']);
    expect(current.code, current.stderr).toBe(0);
    expect(varsIn(path.join(out, 'success.env'))).toMatchObject({
      SLIPWAY_TASK: 'rollback:current',
      SLIPWAY_LIVE: newest,
    });
  });

  it('a notification that hangs is stopped after its timeoutSeconds: a warning, the outcome stands', async () => {
    project.writeConfig({
      hooks: {
        onSuccess: [
          { name: 'chat', timeoutSeconds: 1, commands: ['sleep 600', 'touch "$OUT/late"'], env: { OUT: out } },
        ],
      },
    });
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr).toBe(0);
    expect(project.live()).toBe(releaseIdOf(result.stdout));
    expect(result.stdout).toContain('notification "chat" failed on deployer (stopped after its timeoutSeconds, 1)');
    expect(existsSync(path.join(out, 'late'))).toBe(false);
  }, 60_000);

  it('a notification with an unknown `on` is refused at load: exit 2', async () => {
    project.writeConfig({ hooks: { onSuccess: [{ name: 'chat', on: 'everywhere', commands: ['true'] }] } });
    const result = await project.run(['deploy']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/hooks\.onSuccess\.0\.on: /);
  });
});
