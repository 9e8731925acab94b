// Rollouts in waves (--waves, rollout.*) on 30 real sshd hosts, started once for the file: a failing canary,
// failures past and within rollout.maxFailures, and the compact output on a terminal.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, ROOT, releaseIdOf } from '../helpers/project.js';
import { type SshFleet, startSshHosts, type TestHost } from '../helpers/sshd.js';

const HOSTS = 30;
let fleet: SshFleet;
let project: Project;
const root = (h: TestHost) => path.join(h.srvDir, 'waves');
const live = (h: TestHost) => {
  try {
    return readlinkSync(path.join(root(h), 'current')).replace('releases/', '');
  } catch {
    return null;
  }
};
const releases = (h: TestHost) =>
  existsSync(path.join(root(h), 'releases')) ? readdirSync(path.join(root(h), 'releases')) : [];
const statusOf = (h: TestHost, id: string) =>
  JSON.parse(readFileSync(path.join(root(h), 'releases', id, '.slipway/release.json'), 'utf8')).status;
// A host with /srv/fail-after-switch fails the afterSwitch hook: it fails after its switch, like a bad release.
const failOn = (hosts: TestHost[]) => {
  for (const h of fleet.hosts) rmSync(path.join(h.srvDir, 'fail-after-switch'), { force: true });
  for (const h of hosts) writeFileSync(path.join(h.srvDir, 'fail-after-switch'), '');
};
const config = (rollout?: Record<string, unknown>) => ({
  knownHosts: fleet.knownHosts,
  dependencies: { type: 'none' },
  hooks: {
    afterSwitch: [
      {
        name: 'probe',
        commands: [
          'test ! -e /srv/fail-after-switch',
          // A host with /srv/slow-after-switch says it started, then takes its time (to be interrupted there).
          'if [ -e /srv/slow-after-switch ]; then touch /srv/waves/slow-started; sleep 30; fi',
        ],
      },
    ],
  },
  ...(rollout ? { rollout } : {}),
});

beforeAll(async () => {
  fleet = await startSshHosts(HOSTS);
  project = makeProject({
    format: 'json',
    config: config(),
    hosts: fleet.hosts.map((h) => fleet.configHost(h, '/srv/waves')),
  });
}, 120_000);
afterAll(async () => {
  project?.cleanup();
  await fleet?.stop();
});

describe('waves on 30 hosts', () => {
  let first: string;

  it('goes live wave by wave (1, 10%, 50%, then the rest) and says which host is on which release', async () => {
    const result = await project.run(['deploy', '--waves', '1,10%,50%']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    first = releaseIdOf(result.stdout);
    expect(result.stdout).toContain('wave 1/4: 1 host (web1); 1 of 30 after it');
    expect(result.stdout).toContain('wave 2/4: 2 hosts (web2, web3); 3 of 30 after it');
    expect(result.stdout).toContain('wave 3/4: 12 hosts (web4 … web15); 15 of 30 after it');
    expect(result.stdout).toContain('wave 4/4: 15 hosts (web16 … web30); 30 of 30 after it');
    expect(result.stdout).toContain(`live ${first}: 30 hosts`);
    for (const h of fleet.hosts) expect(live(h)).toBe(first);
    // Every wave's switch came after the previous wave's health gate: wave 2's switch after wave 1's probe.
    const order = result.stdout.split('\n');
    const at = (re: RegExp) => order.findIndex((l) => re.test(l));
    expect(at(/after-switch/)).toBeLessThan(at(/^wave 2\/4/));
  }, 120_000);

  it('a failing canary: it goes back, marked bad; no other host switches, and they drop the prepared release', async () => {
    failOn([fleet.hosts[0]]);
    const result = await project.run(['deploy', '--waves', '1,10%,50%']);
    expect(result.code, result.stdout).toBe(1);
    const id = releaseIdOf(result.stdout);
    expect(result.stderr).toContain('probe');
    expect(live(fleet.hosts[0])).toBe(first);
    expect(statusOf(fleet.hosts[0], id)).toBe('bad');
    for (const h of fleet.hosts.slice(1)) {
      expect(live(h)).toBe(first);
      expect(releases(h)).not.toContain(id);
    }
    expect(result.stdout).not.toMatch(/^wave 2\/4/m);
    expect(result.stdout).toContain('never switched: 29 hosts');
  }, 120_000);

  it('two failures in wave 3 past maxFailures 1: every switched host goes back, the rest never switch', async () => {
    project.writeConfig(config({ maxFailures: 1 }));
    failOn([fleet.hosts[5], fleet.hosts[9]]);
    const result = await project.run(['deploy', '--waves', '1,10%,50%']);
    expect(result.code, result.stdout).toBe(1);
    const id = releaseIdOf(result.stdout);
    // Waves 1–3 (web1 … web15) switched, and went back; the release is marked bad there.
    for (const h of fleet.hosts.slice(0, 15)) {
      expect(live(h), h.name).toBe(first);
      expect(statusOf(h, id), h.name).toBe('bad');
    }
    for (const h of fleet.hosts.slice(15)) {
      expect(live(h), h.name).toBe(first);
      expect(releases(h), h.name).not.toContain(id);
    }
    expect(result.stdout).toContain('never switched: 15 hosts');
    expect(result.stdout).not.toMatch(/^wave 4\/4/m);
  }, 120_000);

  it('the same failures within maxFailures 2: the rollout finishes, those two go back, exit 1 naming them', async () => {
    project.writeConfig(config({ waves: [1, '10%', '50%'], maxFailures: '7%' })); // 7% of 30: 2 hosts
    failOn([fleet.hosts[5], fleet.hosts[9]]);
    const result = await project.run(['deploy']);
    expect(result.code, result.stdout).toBe(1);
    const id = releaseIdOf(result.stdout);
    expect(result.stdout).toContain('left out of the rollout (1 of 2 failures allowed)');
    expect(result.stderr).toContain(
      `release ${id} is live on 28 of 30 hosts; web6 (after-switch), web10 (after-switch)`,
    );
    for (const h of fleet.hosts)
      expect(live(h), h.name).toBe(h === fleet.hosts[5] || h === fleet.hosts[9] ? first : id);
    expect(statusOf(fleet.hosts[5], id)).toBe('bad');
    expect(result.stdout).toMatch(/^wave 4\/4/m);
    failOn([]);
  }, 120_000);

  it('--waves to a task that does not take it, or with --rolling: exit 2, nothing changes', async () => {
    const before = fleet.hosts.map(live);
    const rollback = await project.run(['rollback', '--waves', '1']);
    expect(rollback.code).toBe(2);
    expect(rollback.stderr).toContain('--waves: none of the tasks given takes it (taken by: deploy, promote)');
    const rolling = await project.run(['deploy', '--waves', '1', '--rolling', '2']);
    expect(rolling.code).toBe(2);
    expect(rolling.stderr).toContain('--rolling and --waves: give one');
    expect(fleet.hosts.map(live)).toEqual(before);
  }, 60_000);

  it('on a terminal: one progress line per step, a line of its own for a failed host; --verbose: a line per host', async () => {
    project.writeConfig(config());
    failOn([fleet.hosts[3]]);
    // script(1) gives the CLI a pseudo-terminal as stdout.
    const cli = [process.execPath, path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), path.join(ROOT, 'fabfile.ts')];
    const inPty = (args: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const command = [...cli, '--config', project.configFile, ...args].map((a) => `'${a}'`).join(' ');
        const child = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...process.env, NO_COLOR: '1' } });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.on('close', (code) => resolve({ code, out }));
      });
    const result = await inPty(['deploy']);
    expect(result.code, result.out).toBe(1);
    // The last state of each rewritten line: what the terminal shows.
    const shown = result.out.split(/\r?\n/).map((l) =>
      l
        .split('\r')
        .at(-1)!
        .replaceAll(`${String.fromCharCode(27)}[2K`, ''),
    );
    expect(shown).toContainEqual(expect.stringMatching(/^✓ upload +30\/30 ok +\d+\.\d+s {2}slowest web\d+/));
    expect(shown).toContainEqual(expect.stringMatching(/^✗ after-switch +29\/30 ok, 1 failed/));
    expect(shown).toContainEqual(expect.stringMatching(/^✗ web4 +after-switch \(failed\)/));
    expect(shown.filter((l) => /^✓ web\d+ +upload/.test(l))).toHaveLength(0);
    // Progress while running: "… upload  n done, n failed, n running".
    expect(result.out).toMatch(/… upload +\d+ done, \d+ failed, \d+ running/);
    const verbose = await inPty(['deploy', '--verbose']);
    const lines = verbose.out.split(/\r?\n/);
    expect(lines.filter((l) => /^✓ web\d+ +upload/.test(l))).toHaveLength(30);
    failOn([]);
  }, 180_000);

  it('Ctrl-C during wave 2: its hosts and the canary go back (marked bad), the later waves never switch; 130', async () => {
    project.writeConfig(config());
    failOn([]);
    const before = fleet.hosts.map(live);
    const slow = fleet.hosts[1];
    writeFileSync(path.join(slow.srvDir, 'slow-after-switch'), '');
    const child = project.start(['deploy', '--waves', '1,10%,50%']);
    const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const started = path.join(root(slow), 'slow-started');
    while (!existsSync(started)) await new Promise((r) => setTimeout(r, 50));
    process.kill(child.pid!, 'SIGINT');
    expect(await exit, out).toBe(130);
    rmSync(path.join(slow.srvDir, 'slow-after-switch'));
    rmSync(started);
    const id = releaseIdOf(out);
    expect(fleet.hosts.map(live)).toEqual(before);
    for (const h of fleet.hosts.slice(0, 3)) expect(statusOf(h, id), h.name).toBe('bad');
    for (const h of fleet.hosts.slice(3)) expect(releases(h), h.name).not.toContain(id);
    expect(out).toContain('never switched: 27 hosts');
  }, 120_000);
});
