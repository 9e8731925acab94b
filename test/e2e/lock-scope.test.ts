// The deploy lock's scope is the `locked` block of the fabfile, on every host: a step a fabfile adds after
// the switch runs while each host's lock is held, and a switch that fails on one host puts the others
// back while they are still locked (two real sshd hosts, the real CLI).
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  makeProject,
  type Project,
  ROOT,
  type RunResult,
  releaseIdOf,
  startCli,
  waitForOutput,
} from '../helpers/project.js';
import { type SshFleet, startSshHosts, type TestHost } from '../helpers/sshd.js';

let fleet: SshFleet;
let project: Project;
beforeAll(async () => {
  fleet = await startSshHosts(2);
  const hosts = fleet.hosts.map((h) => ({ ...fleet.configHost(h, '/srv/hello'), roles: ['web'] }));
  project = makeProject({ config: { knownHosts: fleet.knownHosts }, hosts });
});
afterAll(() => {
  project?.cleanup();
  fleet?.stop();
});

const root = (h: TestHost) => path.join(h.srvDir, 'hello');
const lockOwnerFile = (h: TestHost) => path.join(root(h), 'deploy.lock.owner');
const live = (h: TestHost) => readlinkSync(path.join(root(h), 'current')).replace('releases/', '');
const exitOf = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));

/** The repository's deploy, cut down, with a step after the switch that records each host's lock as it finds it. */
const PROBING_FABFILE = `
import { cutover, discard, installDependencies, mustRun, newRelease, packRelease, purgeReleases, runTasks, script, sh,
  task, upload } from ${JSON.stringify(path.join(ROOT, 'tasks/index.ts'))};

await runTasks({
  deploy: task('deploy, then a step of our own after the switch', async (run) => {
    const archive = await packRelease(run);
    await run.locked('deploy', async () => {
      const release = await newRelease(run, archive);
      await run.undoable(async () => {
        await run.each('upload', upload(run, release));
        await run.each('dependencies', installDependencies(run, release));
        await cutover(run, release.id, archive.ref);
      }, 'cleanup', discard(run, release));
      await run.each('probe', (h) => {
        const seen = \`\${h.paths.root}/probe\`;
        const probe = script(
          sh\`if [ -d \${h.paths.lock} ]; then cat \${h.paths.lockOwner} > \${seen}\`,
          sh\`else echo unlocked > \${seen}; fi\`,
        );
        return mustRun(h.host, 'probe', probe).then(() => undefined);
      });
      await run.each('purge', purgeReleases(run));
    });
  }),
}, { root: import.meta.dirname });
`;

describe('the lock is held for the whole locked block, on every host', () => {
  it('a step after the switch runs while every host is locked by this run', async () => {
    const fabfile = path.join(project.dir, 'probing-fabfile.mts');
    writeFileSync(fabfile, PROBING_FABFILE);
    const result = await project.run(['deploy'], { fabfile });
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const id = releaseIdOf(result.stdout);
    for (const h of fleet.hosts) {
      expect(live(h), h.name).toBe(id);
      const seen = readFileSync(path.join(root(h), 'probe'), 'utf8');
      expect(seen, h.name).not.toContain('unlocked');
      expect(JSON.parse(seen), h.name).toMatchObject({ task: 'deploy' });
      // ... and given back at the end.
      expect(existsSync(lockOwnerFile(h)), h.name).toBe(false);
    }
  });

  it('a switch failing on one host switches the others back while they are still locked', async () => {
    const first = await project.run(['deploy']);
    expect(first.code, first.stderr).toBe(0);
    const before = releaseIdOf(first.stdout);
    const [web1, web2] = fleet.hosts;
    // On web2 the switch's temporary link cannot be made (a directory of root's sits where it goes).
    const blocker = path.join(root(web2), '.current.next');
    mkdirSync(blocker);
    const resume = path.join(project.dir, 'resume');
    try {
      const child = startCli(['--config', project.configFile, 'deploy'], {
        SLIPWAY_FAULT: 'pause:before:switch back',
        SLIPWAY_FAULT_RESUME: resume,
      });
      const exited = exitOf(child);
      const seen = await waitForOutput(child, /@@paused before:switch back/);
      // web1 switched and waits to be put back: still locked by this run.
      expect(live(web1)).not.toBe(before);
      expect(existsSync(lockOwnerFile(web1)), seen).toBe(true);
      expect(JSON.parse(readFileSync(lockOwnerFile(web1), 'utf8'))).toMatchObject({ task: 'deploy' });
      writeFileSync(resume, '');
      expect(await exited).toBe(1);
      for (const h of fleet.hosts) {
        expect(live(h), h.name).toBe(before);
        expect(existsSync(lockOwnerFile(h)), h.name).toBe(false);
      }
      expect(readFileSync(path.join(root(web1), 'revisions.log'), 'utf8')).toMatch(new RegExp(`rollback ${before}`));
    } finally {
      rmSync(blocker, { recursive: true, force: true });
    }
  });
});

describe('one host: its switch held back to ride on the unlock (TaskRun.hold)', () => {
  /**
   * Deploys once to its own deploy root on web1, then again with `.current.next` made a folder, so the held
   * switch's rename fails; `check` gets the failed run, the root and the release that was live before.
   */
  async function failHeldSwitch(
    root: string,
    config: Record<string, unknown>,
    check: (result: RunResult, held: string, before: string) => Promise<void> | void,
  ): Promise<void> {
    const [web1] = fleet.hosts;
    const one = makeProject({
      config: { knownHosts: fleet.knownHosts, ...config },
      hosts: [fleet.configHost(web1, root)],
    });
    const held = path.join(web1.srvDir, path.basename(root));
    const blocker = path.join(held, '.current.next');
    try {
      const first = await one.run(['deploy']);
      expect(first.code, first.stderr).toBe(0);
      const before = releaseIdOf(first.stdout);
      mkdirSync(blocker);
      await check(await one.run(['deploy']), held, before);
      expect(readlinkSync(path.join(held, 'current'))).toBe(`releases/${before}`);
      expect(existsSync(path.join(held, 'deploy.lock.owner'))).toBe(false);
      rmSync(blocker, { recursive: true, force: true });
      const next = await one.run(['deploy']);
      expect(next.code, next.stderr).toBe(0);
    } finally {
      rmSync(blocker, { recursive: true, force: true });
      one.cleanup();
    }
  }

  it('failing there, it is reported as the switch failing, the host stays on its release and is unlocked', async () => {
    await failHeldSwitch('/srv/held', {}, (result, _held, before) => {
      expect(result.code, result.stdout).toBe(1);
      expect(result.stdout + result.stderr).toMatch(/switch \(failed\)/);
      expect(result.stdout).toContain(`${fleet.hosts[0].name}: live ${before}`);
      expect(result.stderr).toMatch(/switch failed on/);
    });
  });

  it('sent by an afterSwitch hook and failing: the release never went live there, and the output says so', async () => {
    const hooks = { afterSwitch: [{ name: 'note', commands: ['true'] }] };
    await failHeldSwitch('/srv/held-hook', { hooks }, (result, _held, before) => {
      const output = result.stdout + result.stderr;
      expect(result.code, output).toBe(1);
      // Before: "marked bad, left live", of a release that was never live on the host.
      expect(output).not.toMatch(/left live/);
      expect(output).toMatch(/never went live/);
      expect(result.stdout).toContain(`${fleet.hosts[0].name}: live ${before}`);
    });
  });
});
