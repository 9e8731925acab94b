// Deploys over SSH to real sshd hosts (each with its own /srv), through the same steps as the local target.
import {
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, raceDeploys, releaseIdOf } from '../helpers/project.js';
import { type SshFleet, startSshHosts, type TestHost } from '../helpers/sshd.js';

let fleet: SshFleet;
beforeAll(async () => {
  fleet = await startSshHosts(5, { loginShell: '/bin/sh' });
});
afterAll(() => fleet?.stop());

function sshHosts(fleet: SshFleet, hosts: TestHost[] = fleet.hosts) {
  return hosts.map((h) => ({ ...fleet.configHost(h, '/srv/hello'), roles: ['web'] }));
}

const root = (h: TestHost) => path.join(h.srvDir, 'hello');
const live = (h: TestHost) => {
  try {
    return readlinkSync(path.join(root(h), 'current')).replace('releases/', '');
  } catch {
    return null;
  }
};
const releases = (h: TestHost) =>
  existsSync(path.join(root(h), 'releases')) ? readdirSync(path.join(root(h), 'releases')).sort() : [];

describe('one SSH host (login shell /bin/sh)', () => {
  let project: Project;
  beforeAll(() => {
    project = makeProject({
      format: 'json',
      config: { knownHosts: fleet.knownHosts },
      hosts: sshHosts(fleet, [fleet.hosts[0]]),
    });
  });
  afterAll(() => project.cleanup());
  const web1 = () => fleet.hosts[0];

  it("deploys into the host's own /srv", async () => {
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const id = releaseIdOf(result.stdout);
    expect(live(web1())).toBe(id);
    expect(existsSync(path.join(root(web1()), 'releases', id, 'node_modules/ms/package.json'))).toBe(true);
    expect(existsSync(path.join(fleet.hosts[1].srvDir, 'hello'))).toBe(false);
    expect(readFileSync(path.join(root(web1()), 'revisions.log'), 'utf8')).toContain(`deploy ${id}`);
  });

  it('a warm redeploy uses one connection and at most 3 exec requests; a rollback at most 2', async () => {
    fleet.resetCounts(web1());
    expect((await project.run(['deploy'])).code).toBe(0);
    const deploy = fleet.counts(web1());
    expect(deploy.connections).toBe(1);
    // lock + read state; upload + publish; the switch held back to ride with purge + unlock (TaskRun.hold).
    expect(deploy.execRequests).toBeLessThanOrEqual(3);
    expect(deploy.subsystemRequests).toBe(0);
    fleet.resetCounts(web1());
    expect((await project.run(['rollback'])).code).toBe(0);
    const rollback = fleet.counts(web1());
    expect(rollback.connections).toBe(1);
    expect(rollback.execRequests).toBeLessThanOrEqual(2);
  });

  // Issue 13: slipway's scripts are kept on the host (.slipway/lib-<hash>.sh) and called; what the host lacks or
  // holds damaged goes again with the call, in the same round trip (the lock's own: one more).
  it("slipway's code on the host: removed, cut short, or another version's: sent again, the deploy works", async () => {
    const dir = path.join(root(web1()), '.slipway');
    const libs = () => readdirSync(dir).filter((f) => /^lib-[0-9a-f]{16}\.sh$/.test(f));
    expect(libs().length).toBeGreaterThanOrEqual(3);
    for (const f of libs()) {
      expect(statSync(path.join(dir, f)).mode & 0o777, f).toBe(0o644);
      expect(statSync(path.join(dir, f)).uid, f).toBe(statSync(root(web1())).uid); // the deploy user's
    }
    const deployWith = async (damage: (file: string) => void) => {
      const before = libs();
      for (const f of before) damage(path.join(dir, f));
      fleet.resetCounts(web1());
      const result = await project.run(['deploy']);
      expect(result.code, result.stderr + result.stdout).toBe(0);
      expect(live(web1())).toBe(releaseIdOf(result.stdout));
      // 3 as warm, plus the lock's call sent again with its code.
      expect(fleet.counts(web1()).execRequests).toBe(4);
      return before;
    };
    const kept = await deployWith((f) => rmSync(f));
    // What a warm deploy uses is back (the rollback's code waits for a rollback).
    expect(libs().length).toBeGreaterThanOrEqual(3);
    expect(kept).toEqual(expect.arrayContaining(libs()));
    await deployWith((f) => writeFileSync(f, readFileSync(f, 'utf8').slice(0, 100)));
    for (const f of libs()) expect(readFileSync(path.join(dir, f), 'utf8')).toMatch(/\n_sw=[0-9a-f]{16}\n$/);
    // Another slipway's code (other hashes): this one's is installed beside it.
    const other = (f: string) => f.replace(/[0-9a-f]{16}/, (hash) => [...hash].reverse().join(''));
    const current = await deployWith((f) => renameSync(f, other(f)));
    expect(libs().sort()).toEqual([...current, ...current.map(other)].sort());
  });

  it('`check`, `releases` and `unlock` work over SSH', async () => {
    const check = await project.run(['check']);
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout).toContain(`slipway@${web1().address}:${web1().port}, writable, unlocked`);
    const list = await project.run(['releases']);
    expect(list.stdout).toContain(`* ${live(web1())}`);
  });

  it('values holding quotes, $(...), backticks, ; and spaces are never executed', async () => {
    // No "/" in it (it is a shared dir name): the payloads touch ~slipway/pwned.
    const marker = '/home/slipway/pwned';
    rmSync(marker, { force: true });
    const hostile = `logs dir'"$(cd;touch pwned)\`cd;touch pwned\`;cd;touch pwned`;
    project.writeConfig({
      knownHosts: fleet.knownHosts,
      shared: { dirs: [hostile], files: [] },
      hooks: {
        beforeSwitch: [{ name: 'env', commands: ['printf "%s" "$HOSTILE" > hostile.txt'], env: { HOSTILE: hostile } }],
      },
    });
    const result = await project.run(['deploy', '--ref', 'main']);
    expect(result.code, result.stderr).toBe(0);
    const id = releaseIdOf(result.stdout);
    expect(existsSync(marker)).toBe(false);
    expect(readdirSync(path.join(root(web1()), 'shared'))).toContain(hostile);
    expect(readFileSync(path.join(root(web1()), 'releases', id, 'hostile.txt'), 'utf8')).toBe(hostile);
    const rollback = await project.run([`rollback:$(cd;touch pwned)`]);
    expect(rollback.code).toBe(1);
    expect(existsSync(marker)).toBe(false);
    project.writeConfig({ knownHosts: fleet.knownHosts });
  });

  it('a missing shared file, also inside a shared dir, is created empty and 0600, as on the local target', async () => {
    project.writeConfig({
      knownHosts: fleet.knownHosts,
      shared: { dirs: ['storage'], files: ['config/local.json', 'storage/config.json'] },
    });
    try {
      const result = await project.run(['deploy']);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain('created empty (0600): config/local.json, storage/config.json');
      for (const file of ['config/local.json', 'storage/config.json']) {
        const shared = path.join(root(web1()), 'shared', file);
        expect(lstatSync(shared).isFile(), file).toBe(true);
        expect(statSync(shared).mode & 0o777, file).toBe(0o600);
        expect(readFileSync(path.join(root(web1()), 'current', file), 'utf8'), file).toBe('');
      }
    } finally {
      project.writeConfig({ knownHosts: fleet.knownHosts });
    }
  });
});

describe('five SSH hosts', () => {
  let project: Project;
  beforeAll(() => {
    project = makeProject({ format: 'json', config: { knownHosts: fleet.knownHosts }, hosts: sshHosts(fleet) });
  });
  afterAll(() => project.cleanup());

  it('deploys to all five, switching all to the same release', async () => {
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const id = releaseIdOf(result.stdout);
    for (const h of fleet.hosts) expect(live(h)).toBe(id);
    for (const h of fleet.hosts)
      expect(result.stdout).toMatch(new RegExp(`${h.name}\\s+${id.replaceAll('.', '\\.')}\\s+[\\d.]+s\\s+ok`));
  });

  it('rollback semantics hold on every host', async () => {
    for (let i = 0; i < 2; i++) expect((await project.run(['deploy'])).code).toBe(0);
    const ids = releases(fleet.hosts[0]);
    expect(ids.length).toBeGreaterThanOrEqual(3);
    expect((await project.run(['rollback'])).code).toBe(0);
    for (const h of fleet.hosts) expect(live(h)).toBe(ids[ids.length - 2]);
    expect((await project.run(['rollback'])).code).toBe(0);
    for (const h of fleet.hosts) expect(live(h)).toBe(ids[ids.length - 3]);
    expect((await project.run(['rollback:current'])).code).toBe(0);
    for (const h of fleet.hosts) expect(live(h)).toBe(ids[ids.length - 1]);
  });

  it('a warm redeploy is 4 exec requests per host: the switch goes on its own, before any host unlocks', async () => {
    expect((await project.run(['deploy'])).code).toBe(0);
    for (const h of fleet.hosts) fleet.resetCounts(h);
    expect((await project.run(['deploy'])).code).toBe(0);
    // lock + read state; upload + publish; switch; purge + unlock. Held back to ride on the unlock, a switch
    // failing on one host would find the others already unlocked, with nobody to put them back under the lock.
    for (const h of fleet.hosts) expect(fleet.counts(h).execRequests, h.name).toBe(4);
  });

  it('--rolling 1: each host switches before the next batch starts; only the last batch holds its switch', async () => {
    for (const h of fleet.hosts) fleet.resetCounts(h);
    const result = await project.run(['deploy', '--rolling', '1']);
    expect(result.code, result.stderr).toBe(0);
    const id = releaseIdOf(result.stdout);
    expect(fleet.hosts.map(live)).toEqual(fleet.hosts.map(() => id));
    // Held, an early batch's switch would wait for its unlock at the very end, off the new release meanwhile.
    const counts = fleet.hosts.map((h) => fleet.counts(h).execRequests);
    expect(counts).toEqual([4, 4, 4, 4, 3]);
    for (const h of fleet.hosts) expect(existsSync(path.join(root(h), 'deploy.lock')), h.name).toBe(false);
  });

  it("two concurrent deploys: one runs, the other names the owner and leaves the winner's locks alone", async () => {
    const [a, b] = await raceDeploys(project, 2);
    expect([a.code, b.code].sort()).toEqual([0, 1]);
    const loser = a.code === 1 ? a : b;
    expect(loser.stderr).toMatch(/deploy in progress by \S+@\S+ \(pid \d+\) since/);
    const ids = fleet.hosts.map(live);
    expect(new Set(ids).size).toBe(1);
    for (const h of fleet.hosts) expect(existsSync(path.join(root(h), 'deploy.lock'))).toBe(false);
  });
});
