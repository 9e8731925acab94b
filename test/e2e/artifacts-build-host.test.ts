import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project } from '../helpers/project.js';
import { freePort, type SshFleet, sshRun, startSshHosts, type TestHost, withoutNpm } from '../helpers/sshd.js';

let builders: SshFleet;
let webs: SshFleet;
let dir: string;
let knownHosts: string;
/** The build host's /usr/local/bin. */
let buildBin: string;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'slipway-build-host-'));
  chmodSync(dir, 0o755);
  buildBin = path.join(dir, 'build-bin');
  mkdirSync(buildBin);
  [builders, webs] = await Promise.all([
    startSshHosts(1, { privateDirs: { '/usr/local/bin': buildBin } }),
    startSshHosts(2, { privateDirs: withoutNpm(dir) }),
  ]);
  knownHosts = path.join(dir, 'known_hosts');
  writeFileSync(knownHosts, readFileSync(builders.knownHosts, 'utf8') + readFileSync(webs.knownHosts, 'utf8'));
}, 120_000);
afterAll(async () => {
  await Promise.all([builders?.stop(), webs?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const ssh = (fleet: SshFleet, h: TestHost, command: string) => sshRun(fleet, h, command, knownHosts);

/** The command lines of the processes running on a test host (those in its sshd's mount namespace). */
function processesOn(h: TestHost): string[] {
  const namespace = (pid: string) => {
    try {
      return statSync(`/proc/${pid}/ns/mnt`).ino;
    } catch {
      return undefined; // gone meanwhile
    }
  };
  const own = namespace(String(h.pid));
  return readdirSync('/proc')
    .filter((pid) => /^\d+$/.test(pid) && namespace(pid) === own)
    .flatMap((pid) => {
      try {
        return [readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()];
      } catch {
        return [];
      }
    });
}

describe('artifacts.buildOn: the environment built on a build host', () => {
  let project: Project;
  let env: NodeJS.ProcessEnv;
  const npmCalls = () => path.join(dir, 'npm-calls');
  const config = (buildOn: string) => ({
    knownHosts,
    artifacts: { store: { type: 'dir', path: path.join(dir, 'store') }, dependencies: 'prebuilt', buildOn },
  });
  beforeAll(() => {
    const bin = path.join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(path.join(bin, 'npm'), `#!/bin/sh\necho "npm $*" >> '${npmCalls()}'\nexit 1\n`, { mode: 0o755 });
    env = { PATH: `${bin}:${process.env.PATH}` };
    project = makeProject({
      config: config('build'),
      hosts: [
        { ...builders.configHost(builders.hosts[0], '/srv/hello'), name: 'build1', roles: ['build'] },
        { ...webs.configHost(webs.hosts[0], '/srv/hello'), name: 'web1', roles: ['web'] },
        { ...webs.configHost(webs.hosts[1], '/srv/hello'), name: 'web2', roles: ['web'] },
      ],
    });
  });
  afterAll(() => project?.cleanup());

  it('a build role no host has: exit 2 naming the key and the roles there, nothing built', async () => {
    project.writeConfig(config('builder'));
    try {
      const build = await project.run(['build'], { env });
      expect(build.code).toBe(2);
      expect(build.stderr).toMatch(/artifacts\.buildOn: no host of environment "local" has role "builder"; .*web/);
      expect(existsSync(path.join(dir, 'store'))).toBe(false);
    } finally {
      project.writeConfig();
    }
  }, 120_000);

  it('build runs npm on the build host only; deploy --artifact latest runs the app on hosts without npm', async () => {
    expect((await ssh(webs, webs.hosts[0], 'npm --version')).code).not.toBe(0);
    expect((await ssh(builders, builders.hosts[0], 'npm --version')).code).toBe(0);
    const dry = await project.run(['build', '--dry-run'], { env });
    expect(dry.code, dry.stderr + dry.stdout).toBe(0);
    expect(dry.stdout).toContain('would build the environment on build1');
    // The header says where it builds: on the build host, for the hosts it renders templates for.
    expect(dry.stdout).toMatch(/^build on build1 \(build host\), for web1, web2 \(local\)$/m);
    expect(existsSync(path.join(dir, 'store'))).toBe(false);
    for (const web of webs.hosts) webs.resetCounts(web);
    const build = await project.run(['build'], { env });
    expect(build.code, build.stderr + build.stdout).toBe(0);
    expect(build.stdout).toMatch(/build1 .*npm ci there \(node v/);
    // No connection to the hosts it builds for: a CI job can build without SSH access to them.
    for (const web of webs.hosts) expect(webs.counts(web).connections, web.name).toBe(0);
    // The deployer ran no npm (the one on its PATH records every call).
    expect(existsSync(npmCalls())).toBe(false);
    const store = path.join(dir, 'store', 'hello', 'local');
    const id = readFileSync(path.join(store, 'latest'), 'utf8').trim();
    const manifest = JSON.parse(readFileSync(path.join(store, `${id}.json`), 'utf8'));
    expect(manifest.builder).toMatch(/\(build1\)$/);
    expect(manifest.envKey).toMatch(/^node-/);
    expect(manifest.files.some((f: { path: string }) => f.path.startsWith('node_modules/ms/'))).toBe(true);
    // The build ran outside the build host's deploy root, untouched (it may become a deploy host later).
    const builderRoot = path.join(builders.hosts[0].srvDir, 'hello');
    expect(existsSync(builderRoot)).toBe(false);

    const deploy = await project.run(['deploy', '--artifact', 'latest'], { env });
    expect(deploy.code, deploy.stderr + deploy.stdout).toBe(0);
    expect(deploy.stdout).toMatch(/^deploy on web1, web2 \(local\)$/m);
    expect(deploy.stdout).toMatch(/artifact .* built by .*\(build1\)/);
    expect(deploy.stderr + deploy.stdout).toMatch(/web1 +dependencies \(skipped\).*prebuilt, in the artifact/);
    expect(deploy.stderr + deploy.stdout).toMatch(/web2 +dependencies \(skipped\).*prebuilt, in the artifact/);
    expect(existsSync(builderRoot)).toBe(false);
    expect(existsSync(npmCalls())).toBe(false);
    for (const web of webs.hosts) {
      const port = await freePort();
      // server.js imports ms (a dependency): it answers only with the node_modules built on build1.
      const run = await ssh(
        webs,
        web,
        `cd /srv/hello/current && { PORT=${port} node server.js & pid=$!; }; ` +
          `for i in $(seq 50); do curl -fsS http://127.0.0.1:${port}/health && break; sleep 0.2; done; kill $pid`,
      );
      expect(run.out).toContain(id);
    }
  }, 300_000);

  it('Ctrl-C during the build on a build-only host stops npm there, removes its folder, publishes nothing', async () => {
    // A stand-in npm first on the build host's PATH: a real `npm ci` ends on its own schedule (here within a
    // second, from the cache); this one is certain to be running when the Ctrl-C comes. It says in which folder.
    const marks = path.join(dir, 'marks');
    mkdirSync(marks);
    chmodSync(marks, 0o777);
    const folderFile = path.join(marks, 'folder');
    writeFileSync(path.join(buildBin, 'npm'), `#!/bin/sh\npwd > '${folderFile}'\nsleep 300\n`, { mode: 0o755 });
    const store = path.join(dir, 'store');
    const stored = () => (existsSync(store) ? readdirSync(store, { recursive: true }).sort() : []);
    const before = stored();
    try {
      const child = project.start(['build'], env);
      let output = '';
      child.stdout!.on('data', (d) => (output += d));
      child.stderr!.on('data', (d) => (output += d));
      const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      while (!existsSync(folderFile) || !readFileSync(folderFile, 'utf8')) {
        if (child.exitCode !== null) throw new Error(`build ended before npm started:\n${output}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const folder = readFileSync(folderFile, 'utf8').trim();
      expect(path.dirname(folder)).toBe('/tmp'); // its TMPDIR (unset there)
      expect(processesOn(builders.hosts[0])).toContainEqual('sleep 300');
      process.kill(child.pid!, 'SIGINT');
      expect(await exit, output).toBe(130);
      // Stopped on the build host by the interrupt itself, not left to the connection's end.
      expect(processesOn(builders.hosts[0]).filter((cmd) => /npm|sleep/.test(cmd))).toEqual([]);
      expect(existsSync(folder)).toBe(false);
      expect(stored()).toEqual(before);
      expect(output).toMatch(/SIGINT: stopping/);
      expect(output).toMatch(/build1 +build .*failed/);
    } finally {
      rmSync(path.join(buildBin, 'npm'), { force: true });
    }
  }, 120_000);

  it('check looks at the build host: without npm there it is ✗ with its fix; setup says it is left to you', async () => {
    // The build-only host is a web host's sshd here (node, no npm); the app's host has npm.
    const [app1, build2] = [builders.hosts[0], webs.hosts[1]];
    project.writeConfig({
      ...config('build'),
      environments: {
        local: {
          hosts: [
            { ...builders.configHost(app1, '/srv/hello'), name: 'app1', roles: ['web'] },
            { ...webs.configHost(build2, '/srv/hello'), name: 'build2', roles: ['build'] },
          ],
        },
      },
    });
    try {
      const check = await project.run(['check'], { env });
      const out = check.stdout + check.stderr;
      expect(check.code, out).toBe(1);
      expect(out).toMatch(/✓ build2 +ssh +.*host key verified/);
      expect(out).toMatch(
        /✗ build2 +build runtime +npm not found on slipway's PATH over SSH.*\n +fix: install it on the build host /,
      );
      expect(out).toMatch(/✓ build2 +TMPDIR +\/tmp writable/);
      // The ✗ is the build host's alone.
      expect(out).not.toMatch(/✗ app1/);
      const setup = await project.run(['setup', '--dry-run'], { env });
      expect(setup.stdout + setup.stderr).toMatch(
        /build2, the build host \(artifacts\.buildOn\), is not prepared by setup/,
      );
    } finally {
      project.writeConfig();
    }
  }, 120_000);

  it('a build host with the app role too builds over the deploy connection, and is deployed to', async () => {
    const [build1, web1] = [builders.hosts[0], webs.hosts[0]];
    project.writeConfig({
      ...config('build'),
      environments: {
        local: {
          hosts: [
            { ...builders.configHost(build1, '/srv/hello'), name: 'build1', roles: ['web', 'build'] },
            { ...webs.configHost(web1, '/srv/hello'), name: 'web1', roles: ['web'] },
          ],
        },
      },
    });
    try {
      builders.resetCounts(build1);
      const deploy = await project.run(['deploy'], { env });
      expect(deploy.code, deploy.stderr + deploy.stdout).toBe(0);
      expect(deploy.stdout).toMatch(/build1 .*npm ci there/);
      expect(existsSync(npmCalls())).toBe(false);
      const id = readFileSync(path.join(dir, 'store', 'hello', 'local', 'latest'), 'utf8').trim();
      expect(deploy.stdout).toContain(`live: ${id}`);
      expect(readFileSync(path.join(build1.srvDir, 'hello/current/.slipway/release.json'), 'utf8')).toContain(id);
      // One SSH connection to it for the build and the deploy.
      expect(builders.counts(build1).connections).toBe(1);
    } finally {
      project.writeConfig();
    }
  }, 300_000);
});
