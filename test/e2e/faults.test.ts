// Faults at every step boundary, on the local target and over SSH: the deployer SIGKILLed, or
// interrupted with SIGINT/SIGTERM. After each: the invariants hold, and the next deploy works
// without manual repair. Driven by SLIPWAY_FAULT (the tool stops itself at the step), not by sleeping.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invariantViolations } from '../helpers/invariants.js';
import { makeProject, type Project, waitForOutput } from '../helpers/project.js';
import { type SshFleet, startSshHosts } from '../helpers/sshd.js';

const exitOf = (child: import('node:child_process').ChildProcess) =>
  new Promise<number | null>((resolve) =>
    child.on('close', (code, signal) => resolve(code ?? (signal === 'SIGKILL' ? 137 : null))),
  );

const DEPLOY_STEPS = ['lock', 'upload', 'dependencies', 'configs', 'before-switch', 'switch', 'after-switch', 'purge'];

interface Target {
  name: string;
  project: () => Project;
  roots: () => string[];
}

let fleet: SshFleet;
let local: Project;
let remote: Project;
beforeAll(async () => {
  fleet = await startSshHosts(2);
  local = makeProject({ keepReleases: 3 });
  remote = makeProject({
    format: 'json',
    config: { keepReleases: 3, knownHosts: fleet.knownHosts },
    hosts: fleet.hosts.map((h) => fleet.configHost(h, '/srv/faults')),
  });
  for (const p of [local, remote]) for (let i = 0; i < 2; i++) expect((await p.run(['deploy'])).code).toBe(0);
});
afterAll(async () => {
  local?.cleanup();
  remote?.cleanup();
  await fleet?.stop();
});

const targets: Target[] = [
  { name: 'local', project: () => local, roots: () => [local.deployTo] },
  { name: 'ssh x2', project: () => remote, roots: () => fleet.hosts.map((h) => path.join(h.srvDir, 'faults')) },
];

function expectInvariants(t: Target, tmpClean: boolean) {
  for (const root of t.roots()) expect(invariantViolations(root, { tmpClean }), root).toEqual([]);
}

async function expectNextDeployWorks(t: Target) {
  const next = await t.project().run(['deploy']);
  expect(next.code, next.stderr + next.stdout).toBe(0);
  expectInvariants(t, true);
  const json = await t.project().run(['--json', 'releases']);
  expect(JSON.parse(json.stdout).ok).toBe(true);
}

for (const t of targets) {
  describe(`SIGKILL at step boundaries (${t.name})`, () => {
    const cases = [
      ...DEPLOY_STEPS.map((s) => ['deploy', `kill:after:${s}`]),
      ['deploy', 'kill:before:upload'],
      ['deploy', 'kill:before:switch'],
      ['rollback', 'kill:after:lock'],
      ['rollback', 'kill:before:switch'],
      ['purge', 'kill:after:lock'],
      ['purge', 'kill:before:purge'],
    ];
    for (const [task, fault] of cases) {
      it(`${task} killed at ${fault}`, async () => {
        const child = t.project().start([task], { SLIPWAY_FAULT: fault });
        expect(await exitOf(child)).toBe(137);
        expectInvariants(t, false);
        await expectNextDeployWorks(t);
      });
    }
  });

  describe(`SIGINT / SIGTERM during steps (${t.name})`, () => {
    for (const [signal, code] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
    ] as const) {
      for (const step of ['upload', 'dependencies', 'before-switch', 'switch', 'purge']) {
        it(`${signal} at ${step}: stops, cleans up, releases the lock, says where each host is`, async () => {
          const p = t.project();
          const liveBefore = t
            .roots()
            .map((r) =>
              existsSync(path.join(r, 'current')) ? readFileSync(path.join(r, 'revisions.log'), 'utf8') : '',
            );
          const child = p.start(['deploy'], { SLIPWAY_FAULT: `pause:before:${step}` });
          await waitForOutput(child, new RegExp(`@@paused before:${step}`));
          const output = waitForOutput(child, /live \S+/);
          child.kill(signal);
          expect(await exitOf(child)).toBe(code);
          expect(await output).toMatch(/: live \S+/);
          for (const root of t.roots()) expect(existsSync(path.join(root, 'deploy.lock')), root).toBe(false);
          expectInvariants(t, true);
          expect(liveBefore.length).toBe(t.roots().length);
          await expectNextDeployWorks(t);
        });
      }
    }

    it('a second Ctrl-C exits at once and still leaves the invariants true', async () => {
      const child = t.project().start(['deploy'], { SLIPWAY_FAULT: 'pause:before:switch' });
      const exit = exitOf(child);
      await waitForOutput(child, /@@paused before:switch/);
      child.kill('SIGINT');
      await new Promise((r) => setTimeout(r, 100));
      if (child.exitCode === null) child.kill('SIGINT');
      expect(await exit).toBe(130);
      expectInvariants(t, false);
      await expectNextDeployWorks(t);
    });
  });
}
