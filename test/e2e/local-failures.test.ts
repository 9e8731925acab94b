// Failures on the local target: whatever goes wrong, the live release is untouched, nothing partial is
// left under releases/, the exit code says what kind of failure it was, and the next deploy works.
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, raceDeploys, releaseIdOf, signalCli, waitForOutput } from '../helpers/project.js';

const UPLOAD_LINE = /✓ local\s+upload\s/;
const exitOf = (child: import('node:child_process').ChildProcess) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every directory under releases/ is a complete release: metadata, the app, a complete environment. */
function expectOnlyCompleteReleases(project: Project) {
  for (const id of project.releases()) {
    const dir = path.join(project.deployTo, 'releases', id);
    expect(existsSync(path.join(dir, '.slipway/release.json')), `${id} has metadata`).toBe(true);
    expect(existsSync(path.join(dir, 'server.js')), `${id} has server.js`).toBe(true);
    const env = path.resolve(dir, path.dirname(readlinkSync(path.join(dir, 'node_modules'))));
    expect(existsSync(path.join(env, '.complete')), `${id} uses a complete environment`).toBe(true);
    expect(existsSync(path.join(dir, 'node_modules/ms/package.json')), `${id} has its dependencies`).toBe(true);
  }
}
const envEntries = (project: Project) => readdirSync(path.join(project.deployTo, 'envs'));
const tmpEntries = (project: Project) => readdirSync(path.join(project.deployTo, 'tmp'));

/**
 * Changes the app's version in package.json and package-lock.json: a new lockfile, so `npm ci` runs, with
 * nothing to download.
 */
function bumpLockfile(project: Project, version: string) {
  const pkg = JSON.parse(readFileSync(path.join(project.dir, 'app/package.json'), 'utf8'));
  const lock = JSON.parse(readFileSync(path.join(project.dir, 'app/package-lock.json'), 'utf8'));
  pkg.version = lock.version = lock.packages[''].version = version;
  project.commit(`version ${version}`, {
    'app/package.json': JSON.stringify(pkg, null, 2),
    'app/package-lock.json': JSON.stringify(lock, null, 2),
  });
}

/**
 * Waits until a SIGKILLed run's process is gone from the process table. Its parent (tsx) died with it,
 * so it waits as a zombie until PID 1 reaps it, which on this machine takes a second or two; until
 * then it still looks alive to a kill(pid, 0) probe (see the pidAlive test in test/unit/host.test.ts).
 */
async function waitUntilReaped(pid: number) {
  for (let i = 0; i < 300 && existsSync(`/proc/${pid}`); i++) await sleep(50);
  expect(existsSync(`/proc/${pid}`), `pid ${pid} still in the process table`).toBe(false);
}

describe('failures on the local target', () => {
  let project: Project;
  beforeAll(() => {
    project = makeProject({ keepReleases: 5 });
  });
  afterAll(() => project?.cleanup());

  it(
    'two deploys started at the same moment: exactly one succeeds, ' +
      'the other names the lock holder; the winner is live',
    async () => {
      const [a, b] = await raceDeploys(project, 2);
      expect([a.code, b.code].sort()).toEqual([0, 1]);
      const [winner, loser] = a.code === 0 ? [a, b] : [b, a];
      expect(loser.stderr).toMatch(
        new RegExp(
          String.raw`error: deploy in progress by \S+@\S+ \(pid \d+\) since \d{4}-\d\d-\d\dT[\d:.]+Z on local; ` +
            'if that run is dead, `unlock` removes its lock',
        ),
      );
      const id = releaseIdOf(winner.stdout);
      expect(project.releases()).toEqual([id]);
      expect(project.live()).toBe(id);
      expect(project.revisions()).toHaveLength(1);
      expect(existsSync(path.join(project.deployTo, 'deploy.lock'))).toBe(false);
    },
  );

  it(
    "a failing `npm ci`: exit 1 with the installer's lines, " +
      'current unchanged, no new release, nothing left in tmp/',
    async () => {
      const live = project.live();
      const releases = project.releases();
      const envs = envEntries(project);
      const lines = project.revisions().length;
      const original = {
        pkg: readFileSync(path.join(project.dir, 'app/package.json'), 'utf8'),
        lock: readFileSync(path.join(project.dir, 'app/package-lock.json'), 'utf8'),
      };
      const broken = {
        name: 'hello',
        version: '1.0.0',
        lockfileVersion: 3,
        requires: true,
        packages: {
          '': { name: 'hello', version: '1.0.0', dependencies: { ms: '99.99.99' } },
          'node_modules/ms': { version: '99.99.99', integrity: `sha512-${'A'.repeat(86)}==`, license: 'MIT' },
        },
      };
      project.commit('a version of ms that does not exist', {
        'app/package.json': JSON.stringify({
          name: 'hello',
          version: '1.0.0',
          type: 'module',
          dependencies: { ms: '99.99.99' },
        }),
        'app/package-lock.json': JSON.stringify(broken),
      });
      const result = await project.run(['deploy']);
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(/✗ local\s+dependencies \(failed\)/);
      expect(result.stderr).toContain('dependency install failed on local (exit 1):');
      expect(result.stderr).toMatch(/^npm error .*ms@99\.99\.99/m);
      expect(project.live()).toBe(live);
      expect(project.releases()).toEqual(releases);
      expect(tmpEntries(project)).toEqual([]);
      expect(envEntries(project)).toEqual(envs); // no half-built environment either
      expect(project.revisions()).toHaveLength(lines);
      expect(existsSync(path.join(project.deployTo, 'deploy.lock'))).toBe(false);
      project.commit('back to ms 2.1.3', { 'app/package.json': original.pkg, 'app/package-lock.json': original.lock });
    },
  );

  it(
    'a failing beforeSwitch hook with --keep-failed: ' +
      "exit 1 with the hook's output, the work kept outside releases/",
    async () => {
      const live = project.live();
      project.writeConfig({
        hooks: { beforeSwitch: [{ name: 'fails', commands: ['echo about to fail', 'echo the reason >&2', 'exit 3'] }] },
      });
      try {
        const result = await project.run(['deploy', '--keep-failed']);
        expect(result.code).toBe(1);
        expect(result.stderr).toMatch(/hook "fails" failed on local \(exit 3\):\nthe reason/);
        const kept = tmpEntries(project);
        expect(kept).toEqual([`failed-${releaseIdOf(result.stdout)}`]);
        expect(existsSync(path.join(project.deployTo, 'tmp', kept[0], 'server.js'))).toBe(true);
        expect(project.live()).toBe(live);
        expect(project.releases()).toEqual([live]);
        rmSync(path.join(project.deployTo, 'tmp', kept[0]), { recursive: true });
      } finally {
        project.writeConfig();
      }
    },
  );

  it(
    'an afterSwitch hook failing: rolled back automatically, ' +
      'the release marked bad and skipped by rollback:current',
    async () => {
      const live = project.live();
      project.writeConfig({ hooks: { afterSwitch: [{ name: 'smoke', commands: ['exit 4'] }] } });
      let bad: string;
      try {
        const result = await project.run(['deploy']);
        expect(result.code).toBe(1);
        bad = releaseIdOf(result.stdout);
        expect(result.stderr).toContain(
          `release ${bad} failed after the switch and was rolled back automatically (local on ${live}); marked bad`,
        );
      } finally {
        project.writeConfig();
      }
      expect(project.live()).toBe(live);
      expect(
        JSON.parse(readFileSync(path.join(project.deployTo, 'releases', bad, '.slipway/release.json'), 'utf8')).status,
      ).toBe('bad');
      expect(project.revisions().at(-1)).toMatch(new RegExp(`rollback ${live} from="${bad}" reason="auto"`));
      const back = await project.run(['rollback:current']);
      expect(back.code, back.stderr).toBe(0);
      expect(project.live()).toBe(live); // the newest good release, not the bad one
    },
  );

  it('an unknown --ref: exit 2 naming the ref; nothing on the host changes', async () => {
    const before = project.snapshot();
    const result = await project.run(['deploy', '--ref', 'nope']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown ref "nope"');
    expect(project.snapshot()).toEqual(before);
  });

  it('an unknown task: exit 2 listing the tasks; nothing changes', async () => {
    const before = project.snapshot();
    const result = await project.run(['deploi']);
    expect(result.code).toBe(2);
    const listed = /unknown task "deploi"; tasks: (.*)/.exec(result.stderr)?.[1].split(', ');
    expect(listed).toEqual(expect.arrayContaining(['deploy', 'rollback', 'releases', 'check', 'purge', 'unlock']));
    expect(project.snapshot()).toEqual(before);
  });

  it('an invalid config (unknown keys): exit 2 naming each key path; nothing changes', async () => {
    const before = project.snapshot();
    project.writeConfig({
      keepRelease: 3,
      environments: { local: { hosts: [{ name: 'local', local: true, deployTo: project.deployTo, adress: 'x' }] } },
    });
    try {
      const result = await project.run(['deploy']);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`invalid config ${project.configFile}:`);
      expect(result.stderr).toMatch(/^ {2}keepRelease: unknown key$/m);
      expect(result.stderr).toMatch(/^ {2}environments\.local\.hosts\.0\.adress: unknown key$/m);
    } finally {
      project.writeConfig();
    }
    expect(project.snapshot()).toEqual(before);
  });

  it('SIGINT during a step: the unfinished release is removed, the lock released, exit 130', async () => {
    const live = project.live();
    const releases = project.releases();
    const child = project.start(['deploy'], { SLIPWAY_FAULT: 'pause:before:switch' });
    await waitForOutput(child, /@@paused before:switch/);
    signalCli(child, 'SIGINT');
    expect((await exitOf(child)).code).toBe(130);
    expect(project.live()).toBe(live);
    expect(project.releases()).toEqual(releases);
    expect(tmpEntries(project)).toEqual([]);
    expect(existsSync(path.join(project.deployTo, 'deploy.lock'))).toBe(false);
  });
});

describe('an unknown ref on a host never deployed to', () => {
  let project: Project;
  beforeAll(() => {
    project = makeProject({ format: 'ts' });
  });
  afterAll(() => project?.cleanup());
  it('exit 2 naming the ref, and no deploy root is created', async () => {
    const result = await project.run(['deploy', '--ref', 'no-such-branch']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown ref "no-such-branch"');
    expect(existsSync(project.deployTo)).toBe(false);
  });
});

describe('a deploy killed with SIGKILL', () => {
  let project: Project;
  let live: string;
  beforeAll(async () => {
    project = makeProject({ keepReleases: 5 });
    const first = await project.run(['deploy']);
    expect(first.code, first.stderr).toBe(0);
    live = releaseIdOf(first.stdout);
  });
  afterAll(() => project?.cleanup());

  it(
    'killed after its upload step: no partial release; ' + 'the next deploy takes over the stale lock and succeeds',
    async () => {
      bumpLockfile(project, '1.0.1'); // so `npm ci` runs after the upload
      const releases = project.releases();
      const killed = await project.run(['deploy'], { signalAfter: { output: UPLOAD_LINE, signal: 'SIGKILL' } });
      expect(killed.signal).toBe('SIGKILL');
      const killedId = releaseIdOf(killed.stdout);
      expect(project.live()).toBe(live);
      expect(project.releases()).toEqual(releases);
      expect(project.releases()).not.toContain(killedId);
      // The dead run's lock is still there, naming it.
      const owner = JSON.parse(readFileSync(path.join(project.deployTo, 'deploy.lock.owner'), 'utf8'));
      expect(existsSync(path.join(project.deployTo, 'deploy.lock'))).toBe(true);
      expect(tmpEntries(project)).toEqual([killedId]); // its staged, unfinished release
      await waitUntilReaped(owner.pid);

      const next = await project.run(['deploy']);
      expect(next.code, next.stderr).toBe(0);
      expect(next.stdout).toMatch(
        new RegExp(
          `lock\\s.*took over a stale lock of \\S+@\\S+ \\(pid ${owner.pid}, ` +
            `since ${owner.startedAt.replace(/\./g, '\\.')}\\)`,
        ),
      );
      const id = releaseIdOf(next.stdout);
      expect(project.live()).toBe(id);
      expect(project.releases()).toEqual([...releases, id]);
      expect(project.releases()).not.toContain(killedId);
      expectOnlyCompleteReleases(project);
      expect(tmpEntries(project)).toEqual([]); // the dead run's staging is gone
      expect(envEntries(project).filter((e) => e.startsWith('.'))).toEqual([]);
      expect(existsSync(path.join(project.deployTo, 'deploy.lock'))).toBe(false);
    },
  );

  it('killed while a command runs: the command dies with the deployer, nothing runs on unlocked', async () => {
    const marks = path.join(project.dir, 'marks');
    const hook = { name: 'slow', commands: [`touch ${marks}-started`, 'sleep 2', `touch ${marks}-finished`] };
    project.writeConfig({ hooks: { beforeSwitch: [hook] } });
    try {
      const child = project.start(['deploy']);
      for (let i = 0; i < 1000 && !existsSync(`${marks}-started`); i++) await sleep(10);
      expect(existsSync(`${marks}-started`)).toBe(true); // the hook's command is running
      signalCli(child, 'SIGKILL');
      expect((await exitOf(child)).signal).toBe('SIGKILL');
      await sleep(3000); // past the hook's sleep: a command that outlived the deployer would finish now
      expect(existsSync(`${marks}-finished`)).toBe(false);
    } finally {
      project.writeConfig({});
    }
  });

  it('killed in the middle of `npm ci`: the half-built environment does not outlive the next deploy', async () => {
    live = project.live()!;
    bumpLockfile(project, '1.0.2');
    const child = project.start(['deploy']);
    await waitForOutput(child, UPLOAD_LINE);
    for (let i = 0; i < 400 && !envEntries(project).some((e) => e.startsWith('.build-')); i++) await sleep(10);
    expect(envEntries(project).filter((e) => e.startsWith('.build-'))).toHaveLength(1); // npm ci is running
    signalCli(child, 'SIGKILL');
    expect((await exitOf(child)).signal).toBe('SIGKILL');
    await waitUntilReaped(JSON.parse(readFileSync(path.join(project.deployTo, 'deploy.lock.owner'), 'utf8')).pid);
    expect(project.live()).toBe(live);

    // Back to the live release's lockfile: its environment is complete, so nothing is installed.
    bumpLockfile(project, '1.0.1');
    const next = await project.run(['deploy']);
    expect(next.code, next.stderr).toBe(0);
    expect(next.stdout).toContain('took over a stale lock');
    expectOnlyCompleteReleases(project);
    expect(tmpEntries(project)).toEqual([]);
    const purge = await project.run(['purge']);
    expect(purge.code, purge.stderr).toBe(0);
    // Nothing will ever use or remove envs/.build-<key> of the dead run: a permanent leftover.
    expect(envEntries(project).filter((e) => e.startsWith('.build-'))).toEqual([]);
  });
});
