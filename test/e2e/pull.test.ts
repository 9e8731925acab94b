// `pull:<from-environment>`: production's shared data (and a dump command's output) copied to staging's sshd
// hosts and to the local machine, streamed through the deployer, one connection per host; a protected
// environment is written only with --yes (no terminal here: stdin is not a TTY).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quote } from '../../tasks/lib/sh.js';
import { makeProject, type Project, ROOT } from '../helpers/project.js';
import { DEPLOY_USER, type SshFleet, startSshHosts, type TestHost } from '../helpers/sshd.js';

const TIMEOUT = 120_000;
const TSX = path.join(ROOT, 'node_modules/tsx/dist/cli.mjs');
const FABFILE = path.join(ROOT, 'fabfile.ts');
let fleet: SshFleet;
let project: Project;
const uid = Number(execFileSync('id', ['-u', DEPLOY_USER], { encoding: 'utf8' }));
const gid = Number(execFileSync('id', ['-g', DEPLOY_USER], { encoding: 'utf8' }));

/** A file on a host's /srv as the deploy user owns it. */
function put(h: TestHost, file: string, text: string): void {
  const full = path.join(h.srvDir, file);
  const parts = path.relative(h.srvDir, path.dirname(full)).split('/');
  for (let i = 1; i <= parts.length; i++) {
    const dir = path.join(h.srvDir, ...parts.slice(0, i));
    mkdirSync(dir, { recursive: true });
    chownSync(dir, uid, gid);
  }
  writeFileSync(full, text);
  chownSync(full, uid, gid);
}
const read = (h: TestHost, file: string) => readFileSync(path.join(h.srvDir, file), 'utf8');
const tmpEntries = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

/**
 * The CLI on a terminal of its own (util-linux `script` gives it a pty): types `answer` once it asks, returns
 * what the terminal showed and the exit code.
 */
function onTerminal(args: string[], answer: string): Promise<{ code: number | null; output: string }> {
  const command = [process.execPath, TSX, FABFILE, '--config', project.configFile, ...args].map(quote).join(' ');
  return new Promise((resolve) => {
    const child = spawn('script', ['-qefc', command, '/dev/null'], {
      env: { ...process.env, CI: 'true', NO_COLOR: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    let answered = false;
    const onData = (d: Buffer) => {
      output += d.toString();
      if (!answered && output.includes('[y/N]')) {
        answered = true;
        child.stdin!.write(`${answer}\r`);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('close', (code) => resolve({ code, output }));
  });
}

const production = () => fleet.hosts[0];
const staging = () => [fleet.hosts[1], fleet.hosts[2]];
const demo = () => fleet.hosts[2];

beforeAll(async () => {
  fleet = await startSshHosts(3, { loginShell: '/bin/sh' });
  put(production(), 'hello/shared/uploads/a.txt', 'production upload\n');
  put(production(), 'hello/shared/uploads/deep/b.bin', 'b'.repeat(100_000));
  put(production(), 'hello/shared/config/site.json', '{"site":"production"}\n');
  put(production(), 'hello/shared/other.txt', 'not pulled\n');
  // Staging had data of its own: replaced whole, a file production does not have is gone.
  put(fleet.hosts[1], 'hello/.slipway-root', '');
  put(fleet.hosts[1], 'hello/shared/uploads/stale.txt', 'old staging upload\n');
  project = makeProject({
    format: 'json',
    config: {
      knownHosts: fleet.knownHosts,
      data: {
        dirs: ['uploads'],
        files: ['config/site.json'],
        dump: {
          command: 'echo "-- dump of $(hostname -s 2>/dev/null || echo host)"; cat uploads/a.txt',
          file: 'dumps/db.sql',
        },
      },
      environments: {
        production: { hosts: [fleet.configHost(production(), '/srv/hello')] },
        staging: { hosts: staging().map((h) => fleet.configHost(h, '/srv/hello')) },
        demo: { protected: true, hosts: [fleet.configHost(demo(), '/srv/demo')] },
        local: { hosts: [{ name: 'local', local: true, deployTo: path.join('deploy') }] },
      },
    },
  });
}, TIMEOUT);
afterAll(async () => {
  project?.cleanup();
  await fleet?.stop();
}, TIMEOUT);

describe('pull', () => {
  it(
    "copies production's shared dirs, files and dump to every staging host, one connection each",
    async () => {
      for (const h of fleet.hosts) fleet.resetCounts(h);
      const result = await project.run(['--env', 'staging', 'pull:production']);
      expect(result.code, result.stderr + result.stdout).toBe(0);
      for (const h of staging()) {
        expect(read(h, 'hello/shared/uploads/a.txt')).toBe('production upload\n');
        expect(read(h, 'hello/shared/uploads/deep/b.bin')).toBe('b'.repeat(100_000));
        expect(read(h, 'hello/shared/config/site.json')).toBe('{"site":"production"}\n');
        expect(read(h, 'hello/shared/dumps/db.sql')).toMatch(/^-- dump of .*\nproduction upload\n$/);
        expect(existsSync(path.join(h.srvDir, 'hello/shared/uploads/stale.txt'))).toBe(false);
        expect(existsSync(path.join(h.srvDir, 'hello/shared/other.txt'))).toBe(false);
        expect(tmpEntries(path.join(h.srvDir, 'hello/tmp'))).toEqual([]);
        // lock + state, data, dump, publish + unlock
        expect(fleet.counts(h)).toMatchObject({ connections: 1, execRequests: 4 });
      }
      // The source is only read: one connection (tar, dump), nothing changed there.
      expect(fleet.counts(production())).toMatchObject({ connections: 1, execRequests: 2 });
      expect(read(production(), 'hello/shared/other.txt')).toBe('not pulled\n');
      expect(tmpEntries(path.join(production().srvDir, 'hello/tmp'))).toEqual([]);
    },
    TIMEOUT,
  );

  it(
    'with parallel: 1 each target gets its own run of the source (one waiting would stall the stream)',
    async () => {
      const big = randomBytes(8 * 1024 * 1024); // more than every buffer on the way holds
      put(production(), 'hello/shared/uploads/big.bin', '');
      writeFileSync(path.join(production().srvDir, 'hello/shared/uploads/big.bin'), big);
      const config = JSON.parse(readFileSync(project.configFile, 'utf8'));
      project.writeConfig({ ...config, parallel: 1 });
      try {
        fleet.resetCounts(production());
        const result = await project.run(['--env', 'staging', 'pull:production']);
        expect(result.code, result.stderr + result.stdout).toBe(0);
        for (const h of staging())
          expect(readFileSync(path.join(h.srvDir, 'hello/shared/uploads/big.bin')).equals(big)).toBe(true);
        expect(fleet.counts(production())).toMatchObject({ connections: 1, execRequests: 4 });
      } finally {
        project.writeConfig(config);
        rmSync(path.join(production().srvDir, 'hello/shared/uploads/big.bin'));
      }
    },
    TIMEOUT,
  );

  it(
    '--dry-run prints what each host would run and changes nothing',
    async () => {
      put(fleet.hosts[1], 'hello/shared/uploads/a.txt', 'staging upload\n');
      const result = await project.run(['--env', 'staging', '--dry-run', 'pull:production']);
      expect(result.code, result.stderr + result.stdout).toBe(0);
      expect(result.stdout).toContain('would run:');
      expect(result.stdout).toContain('tar -c -z -f -');
      expect(result.stdout).toContain('with on stdin: the data from');
      expect(read(fleet.hosts[1], 'hello/shared/uploads/a.txt')).toBe('staging upload\n');
      expect(tmpEntries(path.join(fleet.hosts[1].srvDir, 'hello/tmp'))).toEqual([]);
    },
    TIMEOUT,
  );

  it(
    'copies to the local machine (an environment with a local host)',
    async () => {
      const result = await project.run(['--env', 'local', 'pull:production']);
      expect(result.code, result.stderr + result.stdout).toBe(0);
      const shared = path.join(project.dir, 'deploy', 'shared');
      expect(readFileSync(path.join(shared, 'uploads/a.txt'), 'utf8')).toBe('production upload\n');
      expect(readFileSync(path.join(shared, 'dumps/db.sql'), 'utf8')).toContain('production upload');
    },
    TIMEOUT,
  );

  it(
    'a failing dump command: exit 1 with its error, nothing replaced on any target, no staging left',
    async () => {
      put(production(), 'hello/shared/uploads/a.txt', 'newer production upload\n');
      const config = JSON.parse(readFileSync(project.configFile, 'utf8'));
      project.writeConfig({
        ...config,
        data: {
          ...config.data,
          dump: { command: 'echo "pg_dump: connection refused" >&2; exit 7', file: 'dumps/db.sql' },
        },
      });
      try {
        const before = staging().map((h) => read(h, 'hello/shared/uploads/a.txt'));
        const result = await project.run(['--env', 'staging', 'pull:production']);
        expect(result.code).toBe(1);
        expect(result.stderr).toContain('pg_dump: connection refused');
        for (const [i, h] of staging().entries()) {
          expect(read(h, 'hello/shared/uploads/a.txt')).toBe(before[i]);
          expect(tmpEntries(path.join(h.srvDir, 'hello/tmp'))).toEqual([]);
        }
      } finally {
        project.writeConfig(config);
        put(production(), 'hello/shared/uploads/a.txt', 'production upload\n');
      }
    },
    TIMEOUT,
  );

  it(
    'Ctrl-C while the dump streams: exit 130, the staging dirs removed, shared/ unchanged, locks released',
    async () => {
      const before = staging().map((h) => read(h, 'hello/shared/uploads/a.txt'));
      put(production(), 'hello/shared/uploads/a.txt', 'interrupted production upload\n');
      try {
        const result = await project.run(['--env', 'staging', 'pull:production'], {
          env: { SLIPWAY_FAULT: 'pause:before:dump' },
          signalAfter: { output: /@@paused before:dump/, signal: 'SIGINT' },
        });
        expect(result.code, result.stderr + result.stdout).toBe(130);
        for (const [i, h] of staging().entries()) {
          expect(read(h, 'hello/shared/uploads/a.txt')).toBe(before[i]);
          expect(tmpEntries(path.join(h.srvDir, 'hello/tmp'))).toEqual([]);
          expect(existsSync(path.join(h.srvDir, 'hello/deploy.lock'))).toBe(false);
        }
      } finally {
        put(production(), 'hello/shared/uploads/a.txt', 'production upload\n');
      }
    },
    TIMEOUT,
  );

  it(
    'into a protected environment: refused without --yes when there is no terminal (exit 2); with --yes it proceeds',
    async () => {
      put(demo(), 'demo/.slipway-root', '');
      put(demo(), 'demo/shared/uploads/mine.txt', 'demo data\n');
      const refused = await project.run(['--env', 'demo', 'pull:production']);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('environment "demo" is protected');
      expect(refused.stderr).toContain('--yes');
      expect(read(demo(), 'demo/shared/uploads/mine.txt')).toBe('demo data\n');
      expect(existsSync(path.join(demo().srvDir, 'demo/shared/uploads/a.txt'))).toBe(false);

      const confirmed = await project.run(['--env', 'demo', '--yes', 'pull:production']);
      expect(confirmed.code, confirmed.stderr + confirmed.stdout).toBe(0);
      expect(read(demo(), 'demo/shared/uploads/a.txt')).toBe('production upload\n');
      expect(read(demo(), 'demo/shared/dumps/db.sql')).toContain('production upload');
      expect(existsSync(path.join(demo().srvDir, 'demo/shared/uploads/mine.txt'))).toBe(false);
    },
    TIMEOUT,
  );

  it(
    'into a protected environment on a terminal: asks; "n" changes nothing (exit 1), "y" proceeds',
    async () => {
      put(demo(), 'demo/.slipway-root', '');
      put(demo(), 'demo/shared/uploads/a.txt', 'demo again\n');
      const declined = await onTerminal(['--env', 'demo', 'pull:production'], 'n');
      expect(declined.output).toMatch(
        /Environment "demo" is protected\. Replace uploads, config\/site\.json, dumps\/db\.sql/,
      );
      expect(declined.output).toContain('[y/N]');
      expect(declined.output).toContain('not confirmed; nothing changed');
      expect(declined.code).toBe(1);
      expect(read(demo(), 'demo/shared/uploads/a.txt')).toBe('demo again\n');

      const accepted = await onTerminal(['--env', 'demo', 'pull:production'], 'y');
      expect(accepted.code, accepted.output).toBe(0);
      expect(read(demo(), 'demo/shared/uploads/a.txt')).toBe('production upload\n');
    },
    TIMEOUT,
  );

  it(
    'bad arguments: exit 2 before any host is touched',
    async () => {
      const same = await project.run(['--env', 'staging', 'pull:staging']);
      expect(same.code).toBe(2);
      expect(same.stderr).toContain('that is the environment being written to');
      const unknown = await project.run(['--env', 'staging', 'pull:nowhere']);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('unknown environment "nowhere"');
      const host = await project.run(['--env', 'staging', 'pull:production,web9']);
      expect(host.code).toBe(2);
      expect(host.stderr).toMatch(/no host "web9" in environment "production"; hosts: /);
    },
    TIMEOUT,
  );
});
