// `repository` as a git URL: a bare repository served over ssh:// by a real sshd (the deployer's git using the
// test's key and known_hosts through GIT_SSH_COMMAND, host keys checked), and over file://. slipway keeps a bare
// mirror in $XDG_CACHE_HOME/slipway/repositories and fetches it before each release. And the warning when a local
// working tree has uncommitted changes.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { git, makeProject, type Project, releaseIdOf } from '../helpers/project.js';
import { type SshFleet, startSshHosts } from '../helpers/sshd.js';

let fleet: SshFleet;
let source: Project;
let cache: string;
beforeAll(async () => {
  fleet = await startSshHosts(1);
  source = makeProject();
  cache = mkdtempSync(path.join(tmpdir(), 'slipway-cache-'));
}, 60_000);
afterAll(async () => {
  source?.cleanup();
  rmSync(cache, { recursive: true, force: true });
  await fleet?.stop();
});

/** A deploy project (local target) whose repository is `url`. */
const deployFrom = (url: string) =>
  makeProject({ format: 'json', config: { repository: url, dependencies: { type: 'none' } } });

const sshCommand = (knownHosts: string) =>
  `ssh -i ${fleet.clientKey} -o IdentitiesOnly=yes -o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes`;

describe('a repository over ssh://', () => {
  let project: Project;
  let url: string;
  let bare: string;
  beforeAll(() => {
    const host = fleet.hosts[0];
    bare = path.join(host.srvDir, 'hello.git');
    execFileSync('git', ['clone', '-q', '--bare', source.dir, bare]);
    // The deploy user serves it (git refuses a repository owned by someone else).
    execFileSync('chown', ['-R', `${host.user}:`, bare]);
    url = `ssh://${host.user}@${host.address}:${host.port}/srv/hello.git`;
    project = deployFrom(url);
  });
  afterAll(() => project?.cleanup());
  const env = () => ({ XDG_CACHE_HOME: cache, GIT_SSH_COMMAND: sshCommand(fleet.knownHosts) });

  it('deploys from a mirror in the cache, and fetches a new commit for the next deploy', async () => {
    const first = await project.run(['deploy'], { env: env() });
    expect(first.code, first.stderr + first.stdout).toBe(0);
    expect(releaseIdOf(first.stdout).endsWith(git(source.dir, 'rev-parse', '--short=7', 'HEAD'))).toBe(true);
    const mirrors = readdirSync(path.join(cache, 'slipway', 'repositories')).filter((n) => n.endsWith('.git'));
    expect(mirrors).toEqual([expect.stringMatching(/^hello-[0-9a-f]{12}\.git$/)]);
    // A new commit pushed to the remote: the next deploy fetches it.
    const sha = source.commit('second', { 'app/server.js': '// second\n' });
    execFileSync('git', ['-C', source.dir, 'push', '-q', url, 'main'], { env: { ...process.env, ...env() } });
    const second = await project.run(['deploy'], { env: env() });
    expect(second.code, second.stderr + second.stdout).toBe(0);
    const id = releaseIdOf(second.stdout);
    expect(id.endsWith(sha.slice(0, 7))).toBe(true);
    expect(readFileSync(path.join(project.deployTo, 'releases', id, 'server.js'), 'utf8')).toBe('// second\n');
    expect(second.stdout).not.toContain('uncommitted');
  });

  it('refuses a host key that is not known (git over ssh with StrictHostKeyChecking=yes): exit 1, nothing deployed', async () => {
    const empty = path.join(project.dir, 'no_known_hosts');
    writeFileSync(empty, '');
    const fresh = mkdtempSync(path.join(tmpdir(), 'slipway-cache-'));
    const before = project.live();
    try {
      const result = await project.run(['deploy'], {
        env: { XDG_CACHE_HOME: fresh, GIT_SSH_COMMAND: sshCommand(empty) },
      });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`repository ${url}: git clone --mirror failed`);
      expect(result.stderr).toContain('Host key verification failed');
      expect(project.live()).toBe(before);
      expect(readdirSync(path.join(fresh, 'slipway', 'repositories')).filter((n) => n.endsWith('.git'))).toEqual([]);
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });

  it('an unknown ref in the remote repository: exit 2 naming the URL', async () => {
    const result = await project.run(['deploy', '--ref', 'no-such-branch'], { env: env() });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`unknown ref "no-such-branch" in ${url}`);
  });
});

describe('a repository URL holding a password', () => {
  it('never prints the password: a failed fetch names the URL with *** in its place, exit 1', async () => {
    // Port 1 on loopback: nothing listens, the fetch fails at once.
    const project = deployFrom('https://deployer:pa55-in-url@127.0.0.1:1/app.git');
    try {
      const result = await project.run(['deploy'], { env: { XDG_CACHE_HOME: cache } });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('repository https://deployer:***@127.0.0.1:1/app.git: git clone --mirror failed');
      expect(result.stdout + result.stderr).not.toContain('pa55-in-url');
    } finally {
      project.cleanup();
    }
  });
});

describe('a repository over file://', () => {
  it('deploys the ref from the mirror', async () => {
    const bare = path.join(source.dir, '..', `${path.basename(source.dir)}-bare.git`);
    execFileSync('git', ['clone', '-q', '--bare', source.dir, bare]);
    const project = deployFrom(`file://${bare}`);
    try {
      git(source.dir, 'tag', 'v1', 'HEAD~1');
      execFileSync('git', ['-C', source.dir, 'push', '-q', bare, 'v1']);
      const result = await project.run(['deploy', '--ref', 'v1'], { env: { XDG_CACHE_HOME: cache } });
      expect(result.code, result.stderr + result.stdout).toBe(0);
      expect(releaseIdOf(result.stdout).endsWith(git(source.dir, 'rev-parse', '--short=7', 'v1'))).toBe(true);
      expect(result.stdout).toContain('from ref v1');
    } finally {
      project.cleanup();
      rmSync(bare, { recursive: true, force: true });
    }
  });
});

describe('a local working tree with uncommitted changes', () => {
  it('warns that the release is built from the commit, and deploys the committed file', async () => {
    const project = makeProject({ config: { dependencies: { type: 'none' } } });
    try {
      writeFileSync(path.join(project.dir, 'app', 'server.js'), '// not committed\n');
      const result = await project.run(['deploy']);
      expect(result.code, result.stderr).toBe(0);
      const head = git(project.dir, 'rev-parse', '--short=7', 'HEAD');
      expect(result.stdout).toContain(
        `warning: 1 file(s) with uncommitted changes (app/server.js): the release is built from commit ${head} ` +
          '(ref HEAD), not from the working tree',
      );
      const id = releaseIdOf(result.stdout);
      expect(readFileSync(path.join(project.deployTo, 'releases', id, 'server.js'), 'utf8')).not.toContain(
        'not committed',
      );
      // Committed: no warning.
      git(project.dir, 'commit', '-qam', 'now committed');
      const clean = await project.run(['deploy']);
      expect(clean.code).toBe(0);
      expect(clean.stdout).not.toContain('uncommitted');
      expect(existsSync(path.join(project.deployTo, 'current', 'server.js'))).toBe(true);
    } finally {
      project.cleanup();
    }
  });
});
