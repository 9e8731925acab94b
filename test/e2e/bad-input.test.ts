// Bad input, table-driven: each row is an input, the exit code and message it must give, and nothing
// may change on the host. Plus many deploys at once: exactly one runs.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, raceDeploys, waitForOutput } from '../helpers/project.js';
import { freePort } from '../helpers/sshd.js';

let project: Project;
let baseline: { releases: string[]; live: string | null; revisions: number };
beforeAll(async () => {
  project = makeProject({ format: 'json' });
  expect((await project.run(['deploy'])).code).toBe(0);
  baseline = { releases: project.releases(), live: project.live(), revisions: project.revisions().length };
});
afterAll(() => project?.cleanup());

const good = () => JSON.parse(readFileSync(project.configFile, 'utf8'));
// biome-ignore lint/suspicious/noExplicitAny: each row edits the parsed JSON config wherever it needs to
const withConfig = (change: (c: Record<string, any>) => unknown) => () => {
  const c = good();
  change(c);
  return c;
};

interface Row {
  name: string;
  /** A function when the arguments name a file of the project (made in beforeAll). */
  args: string[] | (() => string[]);
  config?: () => unknown;
  before?: () => void | Promise<void>;
  after?: () => void;
  code: number;
  message: RegExp;
}

const rows: Row[] = [
  {
    name: 'unknown task',
    args: ['frobnicate'],
    code: 2,
    message: /unknown task "frobnicate"; tasks: deploy, rollback/,
  },
  { name: 'bad task syntax', args: ['Deploy!'], code: 2, message: /bad task name "Deploy!"/ },
  {
    // It used to be ignored: a rollback with --artifact is no deploy of that artifact.
    name: '--artifact given to a task that does not take it',
    args: ['--artifact', 'latest', 'rollback'],
    code: 2,
    message: /--artifact: none of the tasks given takes it \(taken by: deploy\)/,
  },
  { name: 'empty task argument', args: ['rollback:a,,b'], code: 2, message: /empty argument/ },
  { name: 'rollback to an empty id', args: ['rollback:'], code: 2, message: /empty argument/ },
  {
    name: 'rollback to a traversal',
    args: ['rollback:../x'],
    code: 1,
    message: /not a release id: "\.\.\/x"; releases: /,
  },
  { name: 'rollback to /etc', args: ['rollback:/etc'], code: 1, message: /not a release id: "\/etc"/ },
  { name: 'rollback to an over-long id', args: [`rollback:${'9'.repeat(400)}`], code: 1, message: /not a release id/ },
  { name: 'rollback to a shell-meta id', args: ['rollback:$(reboot);`id`'], code: 1, message: /not a release id/ },
  {
    name: 'rollback to a well-formed id that is not there',
    args: ['rollback:2001.01.01-00.00.00-abcdef0'],
    code: 1,
    message: /no release "2001\.01\.01-00\.00\.00-abcdef0"/,
  },
  {
    name: 'unknown --env',
    args: ['--env', 'prod', 'deploy'],
    code: 2,
    message: /unknown environment "prod"; environments: local/,
  },
  {
    name: '--env __proto__ (an Object.prototype key)',
    args: ['--env', '__proto__', 'deploy'],
    code: 2,
    message: /unknown environment "__proto__"; environments: local$/m,
  },
  {
    name: '--env constructor (an Object.prototype key)',
    args: ['--env', 'constructor', 'deploy'],
    code: 2,
    message: /unknown environment "constructor"; environments: local$/m,
  },
  {
    // The config in another folder: its templates are looked up there, and there are none.
    name: 'services with --config in a folder without templates/',
    code: 2,
    args: () => ['--config', path.join(project.dir, 'ops/deploy.config.json'), 'deploy'],
    message: new RegExp(
      String.raw`services\.supervisor needs a template: no supervisor\.conf\.hbs in \S+\/ops\/templates ` +
        String.raw`\(templates\/, the repository and \.env files are looked up beside`,
    ),
    before: () => {
      mkdirSync(path.join(project.dir, 'ops'), { recursive: true });
      const services = { nginx: false, supervisor: { ctl: 'false', program: path.join(project.dir, 'hello.conf') } };
      writeFileSync(
        path.join(project.dir, 'ops/deploy.config.json'),
        JSON.stringify({ ...good(), repository: '..', services }),
      );
    },
  },
  // Task arguments and config mistakes are found before any host is touched (they failed after upload, exit 1).
  {
    name: 'rollback with two arguments',
    args: ['rollback:current,2001.01.01-00.00.00-abcdef0'],
    code: 2,
    message: /rollback takes one argument \(current or a release id\), got 2/,
  },
  {
    name: 'restart without services',
    args: ['restart'],
    code: 2,
    message: /restart: no services configured \(set "services" in the config\)/,
  },
  {
    name: 'a shared dir outside the release',
    args: ['deploy'],
    config: withConfig((c) => (c.shared = { dirs: ['../../escape'] })),
    code: 2,
    message: /shared\.dirs\.0: must be a path inside the release, like "logs" or "config\/app\.json"/,
  },
  {
    name: 'an absolute shared file',
    args: ['deploy'],
    config: withConfig((c) => (c.shared = { files: ['/etc/passwd'] })),
    code: 2,
    message: /shared\.files\.0: must be a path inside the release/,
  },
  {
    name: 'a hook cwd outside the release',
    args: ['deploy'],
    config: withConfig((c) => (c.hooks = { beforeSwitch: [{ name: 'b', cwd: '..', commands: ['true'] }] })),
    code: 2,
    message: /hooks\.beforeSwitch\.0\.cwd: must be a path inside the release/,
  },
  {
    name: 'a hook env name that is no variable name',
    args: ['deploy'],
    config: withConfig(
      (c) => (c.hooks = { afterSwitch: [{ name: 'a', env: { 'BAD-NAME': 'x' }, commands: ['true'] }] }),
    ),
    code: 2,
    message: /hooks\.afterSwitch\.0\.env\.BAD-NAME: a variable name of letters, digits and "_"/,
  },
  { name: 'unknown option', args: ['--colour', 'deploy'], code: 2, message: /Unknown option '--colour'/ },
  { name: 'no task', args: [], code: 2, message: /no task given/ },
  {
    name: 'missing application',
    args: ['deploy'],
    config: withConfig((c) => delete c.application),
    code: 2,
    message: /application: Invalid input: expected string, received undefined/,
  },
  {
    name: 'missing environments',
    args: ['deploy'],
    config: withConfig((c) => delete c.environments),
    code: 2,
    message: /environments: /,
  },
  {
    name: 'missing deployTo',
    args: ['deploy'],
    config: withConfig((c) => delete c.environments.local.hosts[0].deployTo),
    code: 2,
    message: /environments\.local\.hosts\.0\.deployTo:/,
  },
  {
    name: 'wrong type',
    args: ['deploy'],
    config: withConfig((c) => (c.keepReleases = 'five')),
    code: 2,
    message: /keepReleases: Invalid input: expected number, received string/,
  },
  {
    name: 'unknown key',
    args: ['deploy'],
    config: withConfig((c) => (c.keep = 3)),
    code: 2,
    message: /keep: unknown key/,
  },
  {
    name: 'unknown nested key',
    args: ['deploy'],
    config: withConfig((c) => (c.environments.local.hosts[0].adress = 'x')),
    code: 2,
    message: /environments\.local\.hosts\.0\.adress: unknown key/,
  },
  {
    name: 'invalid application name',
    args: ['deploy'],
    config: withConfig((c) => (c.application = '-Bad_Name')),
    code: 2,
    message: /application: a name matching \[a-z0-9\]\[a-z0-9-\]\*/,
  },
  {
    name: 'keepReleases 0',
    args: ['deploy'],
    config: withConfig((c) => (c.keepReleases = 0)),
    code: 2,
    message: /keepReleases: Too small/,
  },
  {
    name: 'keepReleases negative',
    args: ['deploy'],
    config: withConfig((c) => (c.keepReleases = -2)),
    code: 2,
    message: /keepReleases: Too small/,
  },
  { name: 'config not valid JSON', args: ['deploy'], config: () => '{ nope', code: 2, message: /not valid JSON/ },
  {
    name: 'missing private key',
    args: ['deploy'],
    code: 2,
    message: /cannot read privateKey \/nonexistent\/key: ENOENT/,
    config: withConfig(
      (c) =>
        (c.environments.local.hosts = [
          { name: 'web', host: '127.0.0.1', port: 22, privateKey: '/nonexistent/key', deployTo: '/srv/x' },
        ]),
    ),
  },
  {
    name: 'unreadable private key',
    args: ['deploy'],
    code: 2,
    message: /cannot read privateKey .*EISDIR/,
    config: withConfig(
      (c) =>
        (c.environments.local.hosts = [
          { name: 'web', host: '127.0.0.1', port: 22, privateKey: '/tmp', deployTo: '/srv/x' },
        ]),
    ),
  },
  {
    name: 'a hostile host name',
    args: ['deploy'],
    config: withConfig((c) => (c.environments.local.hosts[0].name = 'web;$(id)')),
    code: 2,
    message: /environments\.local\.hosts\.0\.name: a host name of letters/,
  },
  {
    name: 'a hostile environment name',
    args: ['--env', "prod'$(id)", 'deploy'],
    code: 2,
    message: /unknown environment "prod'\$\(id\)"/,
  },
  {
    name: 'a ref that does not exist',
    args: ['deploy', '--ref', 'v9.9.9'],
    code: 2,
    message: /unknown ref "v9\.9\.9"/,
  },
  {
    name: 'a hostile ref',
    args: ['deploy', '--ref', '$(touch /tmp/slipway-ref-pwned);x'],
    code: 2,
    message: /unknown ref "\$\(touch/,
  },
  {
    name: 'a repository that is not git',
    args: ['deploy'],
    config: withConfig((c) => (c.repository = '/tmp')),
    code: 2,
    message: /not a git repository: \/tmp/,
  },
  {
    name: 'a template with a syntax error',
    args: ['deploy'],
    code: 2,
    message: /template templates\/broken\.conf\.hbs: if doesn't match each/,
    before: () => writeFileSync(path.join(project.dir, 'templates/broken.conf.hbs'), 'server {{#if}} {{/each}}'),
    after: () => writeFileSync(path.join(project.dir, 'templates/broken.conf.hbs'), ''),
  },
  {
    name: 'a template with a missing variable',
    args: ['deploy'],
    code: 2,
    message: /template templates\/broken\.conf\.hbs, line 2: variable "env\.DATABASE_URL" is not defined/,
    before: () =>
      writeFileSync(path.join(project.dir, 'templates/broken.conf.hbs'), 'port={{port}}\nurl={{env.DATABASE_URL}}\n'),
    after: () => writeFileSync(path.join(project.dir, 'templates/broken.conf.hbs'), ''),
  },
];

describe('bad input', () => {
  for (const row of rows) {
    it(`${row.name} → exit ${row.code}`, async () => {
      const original = readFileSync(project.configFile, 'utf8');
      if (row.config) {
        const c = row.config();
        writeFileSync(project.configFile, typeof c === 'string' ? c : JSON.stringify(c));
      }
      await row.before?.();
      try {
        const result = await project.run(typeof row.args === 'function' ? row.args() : row.args);
        expect(result.code, result.stderr).toBe(row.code);
        expect(result.stderr).toMatch(row.message);
        expect(result.stderr).not.toContain('[object Object]');
        // The host has a live release: a table printed before its state was read must not say it has none.
        expect(result.stdout, 'a live release that was not read is shown as (none)').not.toContain('(none)');
      } finally {
        writeFileSync(project.configFile, original);
        row.after?.();
      }
      expect(project.releases()).toEqual(baseline.releases);
      expect(project.live()).toBe(baseline.live);
      expect(project.revisions()).toHaveLength(baseline.revisions);
    });
  }

  it('the host table of a refused task says the host was not changed (it said ok)', async () => {
    const result = await project.run(['rollback:../x']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^\s+local\s+\S+\s+[\d.]+s\s+not changed$/m);
    expect(result.stdout).not.toMatch(/^\s+local\s+\S+\s+[\d.]+s\s+ok$/m);
  });

  it('the lock, release and shared directories are not world-writable; shared/.env is 0600', async () => {
    const { statSync } = await import('node:fs');
    writeFileSync(path.join(project.dir, '.env.local'), 'TOKEN=private-value\n');
    expect((await project.run(['deploy'])).code).toBe(0);
    const child = project.start(['deploy'], { SLIPWAY_FAULT: 'pause:before:upload' });
    await waitForOutput(child, /@@paused/);
    const modes = ['deploy.lock', 'releases', `releases/${project.live()}`, 'shared', 'current/.slipway'].map(
      (p) => [p, statSync(path.join(project.deployTo, p)).mode & 0o777] as const,
    );
    child.kill('SIGINT');
    await new Promise((r) => child.on('close', r));
    for (const [p, mode] of modes) expect(mode & 0o002, p).toBe(0);
    expect(statSync(path.join(project.deployTo, 'shared/.env')).mode & 0o777).toBe(0o600);
    baseline = { releases: project.releases(), live: project.live(), revisions: project.revisions().length };
  });

  it('an unreachable host (closed loopback port) fails within the connect timeout, naming the host', async () => {
    const port = await freePort();
    const original = readFileSync(project.configFile, 'utf8');
    writeFileSync(
      project.configFile,
      JSON.stringify({
        ...good(),
        connectTimeoutSeconds: 3,
        environments: { local: { hosts: [{ name: 'gone', host: '127.0.0.1', port, deployTo: '/srv/x' }] } },
      }),
    );
    const start = Date.now();
    const result = await project.run(['deploy']);
    writeFileSync(project.configFile, original);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`gone: cannot connect to \\S+@127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
    expect(Date.now() - start).toBeLessThan(30_000);
  });

  it('ten deploys started at the same moment: exactly one runs, the others fail fast naming the owner', async () => {
    const before = project.releases().length;
    const results = await raceDeploys(project, 10);
    const winners = results.filter((r) => r.code === 0);
    expect(winners).toHaveLength(1);
    for (const r of results.filter((x) => x.code !== 0)) {
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/deploy in progress by \S+@\S+ \(pid \d+\) since/);
    }
    expect(project.releases().length).toBe(before + 1);
  });
});
