// Whose lock it is, on the local target and over SSH: a run that lost its lock while stalled stops
// without touching the host; a live lock taken from another pid namespace on the same machine is
// not mistaken for a dead one; a deployTo that slipway did not make is refused before anything in it changes.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, ROOT, waitForOutput } from '../helpers/project.js';
import { type SshFleet, startSshHosts } from '../helpers/sshd.js';

let fleet: SshFleet;
beforeAll(async () => {
  fleet = await startSshHosts(1);
});
afterAll(() => fleet?.stop());

interface Target {
  name: string;
  /** A project deploying to `<name>` (a fresh deploy root), and that root as the test sees it. */
  make(name: string): { project: Project; root: string };
}

const targets: Target[] = [
  {
    name: 'local',
    make: () => {
      const project = makeProject({});
      return { project, root: project.deployTo };
    },
  },
  {
    name: 'ssh',
    make: (name) => {
      const h = fleet.hosts[0];
      const host = fleet.configHost(h, `/srv/${name}`);
      return {
        project: makeProject({ config: { knownHosts: fleet.knownHosts }, hosts: [host] }),
        root: path.join(h.srvDir, name),
      };
    },
  },
];

const exitOf = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
/** Everything the child prints, once it has ended. */
const outputOf = (child: ChildProcess) => {
  let text = '';
  child.stdout!.on('data', (d) => (text += d));
  child.stderr!.on('data', (d) => (text += d));
  return new Promise<string>((resolve) => child.on('close', () => resolve(text)));
};
const live = (root: string) => readlinkSync(path.join(root, 'current')).replace('releases/', '');
/**
 * Every path under the deploy root with its type and link target: equal listings mean nothing was added, removed
 * or switched.
 */
const listing = (root: string) =>
  execFileSync('find', [root, '-mindepth', '1', '-printf', '%P %y %l\n'], { encoding: 'utf8' }).split('\n').sort();

for (const t of targets) {
  describe(`lock ownership (${t.name})`, () => {
    // Issue 9 item 18. The stall is a real SIGSTOP of the deployer's process group (as a suspended
    // laptop), and the lock's heartbeat is aged by hand instead of waiting out the stale limit.
    it('a run stalled until another took over its lock stops at once and changes nothing on the host', async () => {
      const { project, root } = t.make('stalled');
      const resume = path.join(project.dir, 'resume');
      let a: ChildProcess | undefined;
      try {
        expect((await project.run(['deploy'])).code).toBe(0);
        project.commit(
          { 'server.js': `${readFileSync(path.join(project.dir, 'app/server.js'), 'utf8')}\n// a\n` },
          'a',
        );
        a = project.start(['deploy'], { SLIPWAY_FAULT: 'pause:before:upload', SLIPWAY_FAULT_RESUME: resume });
        const aExit = exitOf(a);
        const aOutput = outputOf(a);
        await waitForOutput(a, /@@paused before:upload/);
        process.kill(-a.pid!, 'SIGSTOP');
        execFileSync('touch', ['-d', '10 minutes ago', path.join(root, 'deploy.lock')]);

        const b = await project.run(['deploy']);
        expect(b.code, b.stderr).toBe(0);
        expect(b.stdout).toContain('took over a stale lock');
        const afterB = listing(root);
        const liveB = live(root);

        process.kill(-a.pid!, 'SIGCONT');
        writeFileSync(resume, '');
        expect(await aExit).toBe(1);
        const out = await aOutput;
        expect(out).toMatch(/no longer holds the deploy lock/);
        expect(out).not.toMatch(/sha256 verified|cleanup/);
        expect(live(root)).toBe(liveB);
        expect(listing(root)).toEqual(afterB);
        expect(existsSync(path.join(root, 'deploy.lock'))).toBe(false);
        expect((await project.run(['deploy'])).code).toBe(0);
      } finally {
        if (a?.exitCode === null) process.kill(-a.pid!, 'SIGKILL');
        project.cleanup();
      }
    });

    // Issue 9 item 19: a deployer in another pid namespace (a container on the host network, a cloned
    // CI runner) has the same hostname, and its pid means nothing here. Its pid is put where no
    // process of this namespace is, so the old "pid gone on this machine" shortcut would take the lock.
    it('a live lock held from another pid namespace of this machine is not taken over', async () => {
      const { project, root } = t.make('pidns');
      const resume = path.join(project.dir, 'resume');
      const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
      // 100 pids in a row that no process here has (with pid_max 32768 the counter wraps, so look for them).
      const free = (from: number) =>
        Array.from({ length: 100 }, (_, i) => from + i).every((p) => !existsSync(`/proc/${p}`));
      let base = pidMax - 1000;
      while (base > 1000 && !free(base)) base -= 100;
      expect(free(base), 'no 100 free pids in a row on this machine').toBe(true);
      const tsx = path.join(ROOT, 'node_modules/tsx/dist/cli.mjs');
      const holder = spawn(
        'unshare',
        [
          '--pid',
          '--fork',
          '--mount-proc',
          'sh',
          '-c',
          'echo "$0" > /proc/sys/kernel/ns_last_pid && exec "$@"',
          String(base),
          process.execPath,
          tsx,
          path.join(ROOT, 'fabfile.ts'),
          '--config',
          project.configFile,
          'deploy',
        ],
        {
          env: { ...process.env, NO_COLOR: '1', SLIPWAY_FAULT: 'pause:after:lock', SLIPWAY_FAULT_RESUME: resume },
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true,
        },
      );
      const holderExit = exitOf(holder);
      try {
        await waitForOutput(holder, /@@paused after:lock/);
        const owner = JSON.parse(readFileSync(path.join(root, 'deploy.lock.owner'), 'utf8')) as { pid: number };
        expect(owner.pid).toBeGreaterThan(base);
        for (const run of ['second', 'third']) {
          const other = await project.run(['deploy']);
          expect(other.code, `${run} run: ${other.stdout}${other.stderr}`).toBe(1);
          expect(other.stderr).toMatch(/deploy in progress by \S+ \(pid \d+\)/);
        }
        writeFileSync(resume, '');
        expect(await holderExit).toBe(0);
      } finally {
        if (holder.exitCode === null) process.kill(-holder.pid!, 'SIGKILL');
        project.cleanup();
      }
    });

    // Issue 9 item 22: the stage cleanup empties <deployTo>/tmp; a deployTo that is someone else's folder is never
    // touched.
    it(
      'a deployTo that is a non-empty folder slipway did not ' +
        'make is refused with exit 2, and nothing in it changes',
      async () => {
        const { project, root } = t.make('foreign');
        try {
          mkdirSync(path.join(root, 'tmp'), { recursive: true });
          writeFileSync(path.join(root, 'tmp/keep-me'), 'not slipway\n');
          writeFileSync(path.join(root, 'notes.txt'), 'mine\n');
          execFileSync('chown', ['-R', `${t.name === 'ssh' ? 'slipway' : 'root'}`, root]);
          const before = listing(root);
          for (const task of ['deploy', 'rollback', 'purge']) {
            const r = await project.run([task]);
            expect(r.code, `${task}: ${r.stderr}`).toBe(2);
            expect(r.stderr).toMatch(/is not a slipway deploy root/);
            expect(r.stderr).toMatch(/new or empty folder/);
          }
          expect(listing(root)).toEqual(before);
        } finally {
          project.cleanup();
        }
      },
    );
  });
}
