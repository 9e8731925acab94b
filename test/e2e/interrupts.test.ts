// Ctrl-C as a terminal sends it: to the whole process group of README's own command (`npx tsx
// fabfile.ts`), where npx and tsx relay it again, so one key press reaches the deploy several times.
// And interrupts past the switch: the deploy must end on a release that was checked, and say which.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, releaseIdOf, ROOT, waitForOutput } from '../helpers/project.js';
import { type ServiceStack, startServiceStack } from '../helpers/services.js';
import { type SshFleet, startSshHosts } from '../helpers/sshd.js';

const exitOf = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));

/**
 * npx ends by the signal it got once its child ends (no exit code of its own), so the deploy's own
 * exit code is read from its --json summary, printed last.
 */
const summaryOf = (output: string) => {
  const line = output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (!line) throw new Error(`no --json summary in:\n${output}`);
  return JSON.parse(line) as { exitCode: number; tasks: Array<{ hosts: Record<string, { live?: string }> }> };
};

/** README's command, in its own process group (as a terminal's foreground job), collecting all output. */
function startNpx(project: Project, args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn('npx', ['tsx', 'fabfile.ts', '--config', project.configFile, ...args], {
    cwd: ROOT,
    env: { ...process.env, CI: 'true', NO_COLOR: '1', npm_config_loglevel: 'error', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  return { child, output: () => output };
}

/** What a terminal does on Ctrl-C: SIGINT to every process of the foreground group. */
const pressCtrlC = (child: ChildProcess) => process.kill(-child.pid!, 'SIGINT');

const badMark = (deployTo: string, id: string) => {
  const meta = JSON.parse(readFileSync(path.join(deployTo, 'releases', id, '.slipway/release.json'), 'utf8')) as {
    status?: string;
    reason?: string;
  };
  return meta.status === 'bad' ? (meta.reason ?? '') : null;
};

describe('one Ctrl-C under npx tsx fabfile.ts', () => {
  let project: Project;
  beforeAll(async () => {
    project = makeProject({ keepReleases: 3 });
    expect((await project.run(['deploy'])).code).toBe(0);
  });
  afterAll(() => project?.cleanup());

  // The relay's echo is made certain: the group is signalled twice a few ms apart, as npx + tsx do.
  // Paused between steps, or with a command running (stopped by the deploy's interrupt, so its step fails too).
  const scenarios = [
    ['paused between steps', 1],
    ['a command running', 2],
    ['a command running', 3],
  ] as const;
  const PRESSED_TWICE = 'the press arriving twice cleans up once, releases the lock and prints the live release';
  for (const [when, round] of scenarios) {
    it(`${when} (${round}): ${PRESSED_TWICE}`, async () => {
      const live = project.live();
      const started = path.join(project.dir, `hook-started-${round}`);
      const hooks = { beforeSwitch: [{ name: 'slow', commands: [`touch ${started}`, 'sleep 30'] }] };
      project.writeConfig(when === 'paused between steps' ? {} : { hooks });
      const env = when === 'paused between steps' ? { SLIPWAY_FAULT: 'pause:before:dependencies' } : {};
      const run = startNpx(project, ['--json', 'deploy'], env);
      const exit = exitOf(run.child);
      if (when === 'paused between steps') await waitForOutput(run.child, /@@paused before:dependencies/);
      else while (!existsSync(started)) await new Promise((r) => setTimeout(r, 50));
      pressCtrlC(run.child);
      await new Promise((r) => setTimeout(r, 5));
      pressCtrlC(run.child);
      await exit;
      project.writeConfig({});
      expect(summaryOf(run.output()).exitCode, run.output()).toBe(130);
      expect(run.output()).toMatch(new RegExp(`: live ${live}`));
      expect(run.output().match(/cleanup/g), run.output()).toHaveLength(1);
      expect(existsSync(path.join(project.deployTo, 'deploy.lock')), run.output()).toBe(false);
      expect(project.live()).toBe(live);
    });
  }

  it('a deliberate second press, a second or more later, still exits at once, and the next deploy works', async () => {
    const started = path.join(project.dir, 'hook-started');
    project.writeConfig({ hooks: { beforeSwitch: [{ name: 'slow', commands: [`touch ${started}`, 'sleep 30'] }] } });
    // The first press's cleanup is held at its start, so the second press finds it still running.
    const child = project.start(['deploy'], { SLIPWAY_FAULT: 'pause:before:cleanup' });
    const exit = exitOf(child);
    let output = '';
    child.stderr!.on('data', (d) => (output += d));
    while (!existsSync(started)) await new Promise((r) => setTimeout(r, 50));
    process.kill(child.pid!, 'SIGINT');
    await waitForOutput(child, /@@paused before:cleanup/);
    await new Promise((r) => setTimeout(r, 1100));
    process.kill(child.pid!, 'SIGINT');
    expect(await exit).toBe(130);
    expect(output).toMatch(/SIGINT again: exiting at once/);
    expect(output).not.toMatch(/: live /);
    project.writeConfig({});
    const next = await project.run(['deploy']);
    expect(next.code, next.stderr).toBe(0);
  });
});

describe('interrupted past the switch (local target, real nginx + supervisord)', () => {
  let stack: ServiceStack;
  let project: Project;
  let good: string;
  beforeAll(async () => {
    stack = await startServiceStack();
    project = makeProject({ format: 'json', config: stack.deployConfig() });
    const first = await project.run(['deploy']);
    expect(first.code, first.stderr).toBe(0);
    good = releaseIdOf(first.stdout);
  });
  afterAll(async () => {
    await stack?.stop();
    project?.cleanup();
  });

  const cases: Array<[string, NodeJS.Signals, number]> = [
    ['before:restart', 'SIGINT', 130],
    ['before:health', 'SIGTERM', 143],
    ['before:health', 'SIGINT', 130],
  ];
  for (const [point, signal, code] of cases) {
    it(
      `${signal} at ${point}: back on the previous release (configs and program), ` +
        `the new one marked bad "interrupted", live printed true`,
      async () => {
        project.commit(
          { 'server.js': `${readFileSync(path.join(project.dir, 'app/server.js'), 'utf8')}\n// ${point} ${signal}\n` },
          `change ${point}`,
        );
        // The new release brings a changed site too: going back must put the previous one in place again.
        const site = (stack.services.nginx as { site: string }).site;
        const siteBefore = readFileSync(site, 'utf8');
        const template = path.join(project.dir, 'templates/nginx.conf.hbs');
        const original = readFileSync(template, 'utf8');
        writeFileSync(template, `# ${point} ${signal}\n${original}`);
        const run = startNpx(project, ['--json', 'deploy'], { SLIPWAY_FAULT: `pause:${point}` });
        const exit = exitOf(run.child);
        await waitForOutput(run.child, new RegExp(`@@paused ${point}`));
        writeFileSync(template, original);
        const fresh = releaseIdOf(run.output());
        // One host: its switch is held back until its next command, the restart's (TaskRun.hold).
        expect(project.live()).toBe(point === 'before:restart' ? good : fresh);
        expect(readFileSync(site, 'utf8')).toContain(`# ${point} ${signal}`);
        process.kill(-run.child.pid!, signal);
        await exit;
        expect(readFileSync(site, 'utf8')).toBe(siteBefore);
        expect(summaryOf(run.output()).exitCode, run.output()).toBe(code);
        expect(project.live(), run.output()).toBe(good);
        expect(run.output()).toMatch(new RegExp(`: live ${good}`));
        expect(run.output()).not.toMatch(new RegExp(`: live ${fresh}`));
        expect(run.output()).toMatch(/interrupted after the switch/);
        // Switched (a held switch is sent before the way back, never dropped), then back.
        const log = readFileSync(path.join(project.deployTo, 'revisions.log'), 'utf8').trim().split('\n');
        expect(log.at(-2)).toContain(` deploy ${fresh} `);
        expect(log.at(-1)).toContain(` rollback ${good} `);
        expect(badMark(project.deployTo, fresh)).toBe('interrupted');
        expect(badMark(project.deployTo, good)).toBeNull();
        expect(summaryOf(run.output()).tasks[0].hosts.local.live).toBe(good);
        expect(await stack.answer(good)).toContain(`hello from release ${good}`);
        expect(existsSync(path.join(project.deployTo, 'deploy.lock'))).toBe(false);
      },
    );
  }

  it(
    'SIGINT while an afterSwitch hook runs (command killed): ' +
      'the bad mark goes on the new release, never the one returned to',
    async () => {
      const started = path.join(project.dir, 'hook-started');
      project.writeConfig({
        ...stack.deployConfig(),
        hooks: { afterSwitch: [{ name: 'slow', commands: [`touch ${started}`, 'sleep 30'] }] },
      });
      project.commit(
        { 'server.js': `${readFileSync(path.join(project.dir, 'app/server.js'), 'utf8')}\n// hook\n` },
        'change hook',
      );
      const run = startNpx(project, ['--json', 'deploy'], {});
      const exit = exitOf(run.child);
      await waitForOutput(run.child, /release id: \S+/);
      const fresh = releaseIdOf(run.output());
      while (!existsSync(started)) await new Promise((r) => setTimeout(r, 50));
      pressCtrlC(run.child);
      await exit;
      expect(summaryOf(run.output()).exitCode, run.output()).toBe(130);
      project.writeConfig(stack.deployConfig());
      expect(project.live(), run.output()).toBe(good);
      expect(run.output()).toMatch(new RegExp(`: live ${good}`));
      expect(badMark(project.deployTo, fresh)).toBe('interrupted');
      expect(badMark(project.deployTo, good)).toBeNull();
      expect(await stack.answer(good)).toContain(`hello from release ${good}`);
      const next = await project.run(['deploy']);
      expect(next.code, next.stderr).toBe(0);
    },
  );
});

describe('interrupted past the switch of a first deploy', () => {
  it('nothing to go back to: the release stays live, marked bad "interrupted", and the output says so', async () => {
    const project = makeProject({});
    try {
      const started = path.join(project.dir, 'hook-started');
      project.writeConfig({ hooks: { afterSwitch: [{ name: 'slow', commands: [`touch ${started}`, 'sleep 30'] }] } });
      const run = startNpx(project, ['--json', 'deploy'], {});
      const exit = exitOf(run.child);
      while (!existsSync(started)) await new Promise((r) => setTimeout(r, 50));
      pressCtrlC(run.child);
      await exit;
      expect(summaryOf(run.output()).exitCode, run.output()).toBe(130);
      const fresh = releaseIdOf(run.output());
      expect(project.live()).toBe(fresh);
      expect(badMark(project.deployTo, fresh)).toBe('interrupted');
      expect(run.output()).toMatch(/interrupted after the switch, .*nothing to go back to, left live/);
      expect(existsSync(path.join(project.deployTo, 'deploy.lock'))).toBe(false);
    } finally {
      project.cleanup();
    }
  });
});

describe('real sshd: a Ctrl-C while remote commands run, a connection dropped past the switch', () => {
  let fleet: SshFleet;
  let project: Project;
  beforeAll(async () => {
    fleet = await startSshHosts(2);
    project = makeProject({
      format: 'json',
      config: { keepReleases: 3, knownHosts: fleet.knownHosts },
      hosts: fleet.hosts.map((h) => fleet.configHost(h, '/srv/drop')),
    });
    expect((await project.run(['deploy'])).code).toBe(0);
  });
  afterAll(async () => {
    project?.cleanup();
    await fleet?.stop();
  });

  it(
    'one SIGINT to the CLI alone while remote commands run: ' + 'each host\'s "cleanup" runs and is printed once',
    async () => {
      const hook = { name: 'slow', commands: ['touch /srv/drop/hook-started-single', 'sleep 30'] };
      project.writeConfig({ keepReleases: 3, knownHosts: fleet.knownHosts, hooks: { beforeSwitch: [hook] } });
      const child = project.start(['deploy']);
      let output = '';
      child.stdout!.on('data', (d) => (output += d));
      child.stderr!.on('data', (d) => (output += d));
      const exit = exitOf(child);
      const marks = fleet.hosts.map((h) => path.join(h.srvDir, 'drop/hook-started-single'));
      while (!marks.every((m) => existsSync(m))) await new Promise((r) => setTimeout(r, 50));
      process.kill(child.pid!, 'SIGINT');
      expect(await exit, output).toBe(130);
      project.writeConfig({ keepReleases: 3, knownHosts: fleet.knownHosts });
      for (const h of fleet.hosts) expect(output.match(new RegExp(`${h.name} +cleanup`, 'g')), output).toHaveLength(1);
      for (const h of fleet.hosts) expect(output).toMatch(new RegExp(`${h.name}: live `));
    },
  );

  it('the unreachable host is reported as state unknown, the other goes back to its previous release', async () => {
    const [lost, kept] = fleet.hosts;
    const root = (h: typeof lost) => path.join(h.srvDir, 'drop');
    const liveOf = (h: typeof lost) =>
      readFileSync(path.join(root(h), 'revisions.log'), 'utf8')
        .trim()
        .split('\n')
        .pop()!
        .split(' ')[2];
    const before = liveOf(kept);
    // The hook runs in releases/<id>: ../../ is the deploy root. Only the host to lose sleeps in it.
    writeFileSync(path.join(root(lost), 'slow'), '');
    const hook = { name: 'slow', commands: ['touch ../../hook-started', 'if [ -e ../../slow ]; then sleep 30; fi'] };
    project.writeConfig({ keepReleases: 3, knownHosts: fleet.knownHosts, hooks: { afterSwitch: [hook] } });
    const run = startNpx(project, ['--json', 'deploy'], {});
    const exit = exitOf(run.child);
    while (!existsSync(path.join(root(lost), 'hook-started'))) await new Promise((r) => setTimeout(r, 50));
    fleet.kill(lost);
    await exit;
    expect(summaryOf(run.output()).exitCode, run.output()).toBe(1);
    const fresh = releaseIdOf(run.output());
    expect(liveOf(kept)).toBe(before);
    expect(run.output()).toMatch(new RegExp(`${lost.name}: live unknown`));
    expect(run.output()).toMatch(new RegExp(`${kept.name} +${before}`));
    expect(run.output()).not.toMatch(new RegExp(`${lost.name} +${fresh}`));
    await fleet.revive(lost);
  });
});
