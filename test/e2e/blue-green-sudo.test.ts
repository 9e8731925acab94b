// `check` with cutover.strategy 'blue-green' and services.sudo (no helper): it asks sudo (`sudo -n -l`) about
// exactly the commands a blue-green deploy runs — the slots' supervisorctl calls (<name>-blue, <name>-green),
// the programs file, the nginx reload of listen 'port' — and names each one refused. nginx and supervisord run
// as root (the test's own); the deploy user `slipway` reaches them only through the sudo rules its sshd host sees
// in /etc/sudoers.d (bind-mounted in its mount namespace only): README's broad rules for the file commands and
// nginx, and supervisorctl narrowed to blue-green's calls, written out one by one.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, releaseIdOf } from '../helpers/project.js';
import { deployRootIn, type ServiceStack, startServiceStack } from '../helpers/services.js';
import { DEPLOY_USER, type SshFleet, startSshHosts, twoFreePorts } from '../helpers/sshd.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'slipway-bg-sudo-'));
const sudoers = path.join(scratch, 'sudoers.d');

let fleet: SshFleet;
let stack: ServiceStack;
let project: Project;
let ctl: string;

/** supervisorctl narrowed to the calls a blue-green deploy makes (and check's own `status hello`). */
function slotRules(leaveOut?: string): string[] {
  const calls = ['reread', 'pid hello', 'status hello'];
  for (const slot of ['blue', 'green'])
    calls.push(...['update', 'start', 'stop', 'status'].map((c) => `${c} hello-${slot}`), `tail hello-${slot} stderr`);
  return calls.filter((c) => c !== leaveOut).map((c) => `${ctl} ${c}`);
}

/** The deploy user's rules: README's for the file commands and nginx; supervisorctl as `slotRules` says. */
function writeRules(leaveOut?: string): void {
  const file = path.join(sudoers, 'slipway');
  const rules = ['/usr/bin/cp', '/usr/bin/mv', '/usr/bin/rm', '/usr/bin/mkdir', '/usr/bin/touch', '/usr/bin/ln'];
  const allowed = [...rules, '/usr/sbin/nginx', ...slotRules(leaveOut)];
  const line = `${DEPLOY_USER} ALL=(root) NOPASSWD: ${allowed.join(', ')}\n`;
  writeFileSync(file, line, { mode: 0o440 });
  chmodSync(file, 0o440);
}

beforeAll(async () => {
  mkdirSync(sudoers, { mode: 0o755 });
  chmodSync(scratch, 0o755);
  stack = await startServiceStack();
  ctl = (stack.services.supervisor as { ctl: string }).ctl;
  writeRules();
  fleet = await startSshHosts(1, { privateDirs: { '/etc/sudoers.d': sudoers } });
  const root = deployRootIn(stack, 'deploy');
  const h = fleet.hosts[0];
  project = makeProject({
    format: 'json',
    config: {
      knownHosts: fleet.knownHosts,
      ...stack.deployConfig(),
      services: { ...stack.services, sudo: 'sudo -n' },
      cutover: { strategy: 'blue-green', listen: 'port', ports: await twoFreePorts(), drainSeconds: 2 },
    },
    hosts: [{ name: 'web1', host: h.address, port: h.port, user: h.user, privateKey: fleet.clientKey, deployTo: root }],
  });
}, 120_000);
afterAll(async () => {
  await stack?.stop();
  await fleet?.stop();
  project?.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

describe("blue-green with services.sudo: check asks sudo about the slots' commands", () => {
  it('rules allowing exactly those: check ✓, and two deploys go live through them (one drains)', async () => {
    const checked = await project.run(['check']);
    expect(checked.code, checked.stderr + checked.stdout).toBe(0);
    expect(checked.stdout).toMatch(/^✓ web1 +sudo rules \(sudo -n\) +allow all \d+ commands a deploy runs$/m);
    for (let i = 0; i < 2; i++) {
      const result = await project.run(['deploy']);
      expect(result.code, result.stderr + result.stdout).toBe(0);
      expect(result.stdout).toMatch(/move-traffic .*nginx reloaded, confirmed/);
      if (i) expect(result.stdout).toMatch(/drain-slot .*drained and stopped hello-blue/);
      const id = releaseIdOf(result.stdout);
      expect(await stack.answer(id)).toContain(`hello from release ${id}`);
      project.commit({ 'README.md': `deploy ${i}\n` }, `deploy ${i}`);
    }
  }, 180_000);

  it('one rule missing (supervisorctl stop hello-green): check ✗ names that command and how to fix it', async () => {
    writeRules('stop hello-green');
    try {
      const result = await project.run(['check']);
      expect(result.code, result.stdout).toBe(1);
      const line = /^✗ web1 +sudo rules \(sudo -n\) +refuse 1 of \d+ commands a deploy runs, e\.g\. (.*)$/m;
      expect(result.stdout).toMatch(line);
      expect(line.exec(result.stdout)?.[1]).toContain(`${ctl} stop hello-green: `);
      const fix = /^ +fix: (.*)$/m.exec(result.stdout.slice(result.stdout.search(line)))?.[1];
      expect(fix).toContain(`/etc/sudoers.d/hello`);
      expect(fix).toMatch(new RegExp(`refused: ${ctl.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} stop hello-green$`));
    } finally {
      writeRules();
    }
  }, 60_000);
});
