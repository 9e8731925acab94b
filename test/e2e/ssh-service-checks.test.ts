// The service commands as a deploy user with sudo runs them: nginx and supervisord run as root (as
// from the distribution's packages), the deploy user `slipway` reaches them only through README's
// sudo rules. Each host sees its own /etc/sudoers.d (those rules, or none) and, where said, an empty
// /var/lib/nginx (a host where nginx never ran): bind-mounted in its mount namespace only.
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, releaseIdOf } from '../helpers/project.js';
import { type ServiceStack, startServiceStack } from '../helpers/services.js';
import { DEPLOY_USER, type SshFleet, startSshHosts } from '../helpers/sshd.js';

/** README's "Preparing a server" rules, for the test's deploy user. */
const README_SUDO_RULES = `${DEPLOY_USER} ALL=(root) NOPASSWD: /usr/bin/cp, /usr/bin/mv, /usr/bin/rm, /usr/bin/mkdir, /usr/bin/touch, /usr/bin/ln, /usr/sbin/nginx, /usr/bin/supervisorctl\n`;

const scratch = mkdtempSync(path.join(tmpdir(), 'slipway-servicecheck-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A root-owned folder, as sudo and nginx want theirs; `files` are written 0440. */
function rootDir(name: string, files: Record<string, string> = {}): string {
  const dir = path.join(scratch, name);
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  for (const [file, text] of Object.entries(files)) writeFileSync(path.join(dir, file), text, { mode: 0o440 });
  return dir;
}

function deployUserIds(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${DEPLOY_USER}:`)) ?? '';
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

const liveIn = (root: string) => readlinkSync(path.join(root, 'current'));

/** A deploy root the daemons (in the machine's own namespace) can see: inside the stack's dir, owned by the deploy user. */
function deployRootIn(stack: ServiceStack, name: string): string {
  const dir = path.join(stack.dir, name);
  mkdirSync(dir);
  const { uid, gid } = deployUserIds();
  chownSync(dir, uid, gid);
  return dir;
}

describe('with sudo, on a host where nginx never ran (item 6)', () => {
  let fleet: SshFleet;
  let stack: ServiceStack;
  let project: Project;
  let root: string;

  beforeAll(async () => {
    fleet = await startSshHosts(1, { privateDirs: { '/etc/sudoers.d': rootDir('sudoers-readme', { slipway: README_SUDO_RULES }), '/var/lib/nginx': rootDir('var-lib-nginx') } });
    stack = await startServiceStack();
    const h = fleet.hosts[0];
    root = deployRootIn(stack, 'deploy');
    project = makeProject(
      { knownHosts: fleet.knownHosts, ...stack.deployConfig(), services: { ...stack.services, sudo: 'sudo -n' } },
      [{ name: 'web1', host: h.address, port: h.port, user: h.user, privateKey: fleet.clientKey, deployTo: root }],
    );
  });
  afterAll(async () => {
    await stack?.stop();
    await fleet?.stop();
    project?.cleanup();
  });

  it('the pre-switch nginx -t runs through services.sudo like the install: the deploy goes live', async () => {
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const id = releaseIdOf(result.stdout);
    expect(await stack.answer(id)).toContain(`hello from release ${id}`);
  });

  it('a site nginx rejects: the failure is the nginx check\'s, with nginx\'s own message, not a temp file\'s', async () => {
    const before = liveIn(root);
    writeFileSync(path.join(project.dir, 'templates/nginx.conf.hbs'), 'server {\n    listen {{listen}};\n    bogus_directive on;\n}\n');
    try {
      const result = await project.run(['deploy', '--json']);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('nginx check failed on web1');
      expect(result.stderr).toContain('nginx -t rejected the rendered site');
      expect(result.stderr).toMatch(/unknown directive "bogus_directive" in the rendered nginx\.conf:3/);
      expect(result.stderr).not.toMatch(/upload failed|nginx-check|\/tmp\//);
      expect(JSON.parse(result.stdout).tasks[0].hosts.web1.failedAt).toBe('nginx check');
      expect(liveIn(root)).toBe(before);
    } finally {
      cpSync(path.join(import.meta.dirname, '../../templates/nginx.conf.hbs'), path.join(project.dir, 'templates/nginx.conf.hbs'));
    }
  });
});
