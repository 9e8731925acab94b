// Deploys on the local target, end to end: the real CLI on a real git repository (deploy.config.ts),
// real `npm ci`. Each `it` builds on the previous one's deploy root, in order.
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { git, makeProject, type Project, releaseIdOf } from '../helpers/project.js';

const ID = /^\d{4}\.\d{2}\.\d{2}-\d{2}\.\d{2}\.\d{2}-[0-9a-f]{7}$/;
const IS_NUMBER_INTEGRITY =
  'sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPDlK9cGvNp6NZWZUBlbGXYxxng==';

describe('deploy on the local target', () => {
  let project: Project;
  beforeAll(() => {
    project = makeProject({ keepReleases: 5 });
  });
  afterAll(() => project?.cleanup());
  const at = (...parts: string[]) => path.join(project.deployTo, ...parts);
  const envs = () => readdirSync(at('envs'));
  /** The env key a release's node_modules link points into. */
  const envOf = (id: string) =>
    /^\.\.\/\.\.\/envs\/([^/]+)\/node_modules$/.exec(readlinkSync(at('releases', id, 'node_modules')))?.[1];
  const ids: string[] = [];

  it(
    'first deploy: exit 0, a complete release, a relative current link, ' +
      'an environment, metadata, one revisions line',
    async () => {
      expect(project.configFile).toMatch(/deploy\.config\.ts$/);
      const result = await project.run(['deploy']);
      expect(result.code, result.stderr).toBe(0);
      const id = releaseIdOf(result.stdout);
      ids.push(id);
      expect(id).toMatch(ID);
      expect(id.endsWith(git(project.dir, 'rev-parse', '--short=7', 'HEAD'))).toBe(true);
      expect(project.releases()).toEqual([id]);

      const release = at('releases', id);
      expect(readFileSync(path.join(release, 'server.js'), 'utf8')).toBe(
        readFileSync(path.join(project.dir, 'app/server.js'), 'utf8'),
      );
      expect(existsSync(path.join(release, 'app'))).toBe(false); // the subdirectory's contents, not the repository

      const link = readlinkSync(at('current'));
      expect(link).toBe(`releases/${id}`);
      expect(path.isAbsolute(link)).toBe(false);
      expect(realpathSync(at('current'))).toBe(realpathSync(release));

      const key = envOf(id);
      expect(key).toMatch(/^node-[0-9a-f]{16}$/);
      expect(envs()).toEqual([key]);
      expect(existsSync(at('envs', key!, '.complete'))).toBe(true);
      expect(JSON.parse(readFileSync(path.join(release, 'node_modules/ms/package.json'), 'utf8')).version).toBe(
        '2.1.3',
      );

      expect(readlinkSync(path.join(release, 'logs'))).toBe('../../shared/logs');
      const meta = JSON.parse(readFileSync(path.join(release, '.slipway/release.json'), 'utf8'));
      expect(meta).toMatchObject({
        id,
        ref: 'HEAD',
        commit: git(project.dir, 'rev-parse', 'HEAD'),
        status: 'ok',
        envKey: key,
      });
      expect(Date.now() - Date.parse(meta.deployedAt)).toBeLessThan(120_000);

      const log = project.revisions();
      expect(log).toHaveLength(1);
      expect(log[0]).toMatch(
        new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ deploy ${id} from="" ref="HEAD" by=\\S+@\\S+$`),
      );

      expect(readdirSync(at('tmp'))).toEqual([]);
      expect(existsSync(at('deploy.lock'))).toBe(false);
      expect(existsSync(at('deploy.lock.owner'))).toBe(false);
    },
  );

  it('redeploy with an unchanged lockfile: the environment is reused, nothing installed, a new release', async () => {
    const [key] = envs();
    const before = {
      inode: statSync(at('envs', key)).ino,
      complete: statSync(at('envs', key, '.complete')).mtimeMs,
      ms: statSync(at('envs', key, 'node_modules/ms')).ino,
    };
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr).toBe(0);
    const id = releaseIdOf(result.stdout);
    ids.push(id);
    expect(result.stdout).toMatch(new RegExp(`dependencies\\s+.*reused envs/${key}, no install`));
    expect(result.stdout).not.toMatch(/installed envs/);
    expect(envs()).toEqual([key]);
    expect(statSync(at('envs', key)).ino).toBe(before.inode);
    expect(statSync(at('envs', key, '.complete')).mtimeMs).toBe(before.complete);
    expect(statSync(at('envs', key, 'node_modules/ms')).ino).toBe(before.ms);
    expect(id).not.toBe(ids[0]);
    expect(project.releases()).toEqual(ids);
    expect(project.live()).toBe(id);
    expect(envOf(id)).toBe(key);
    expect(project.revisions()).toHaveLength(2);
  });

  it(
    'a changed lockfile (a second dependency) installs a new environment, ' +
      'through the npm cache in <deployTo>/cache',
    async () => {
      const [oldKey] = envs();
      const pkg = JSON.parse(readFileSync(path.join(project.dir, 'app/package.json'), 'utf8'));
      const lock = JSON.parse(readFileSync(path.join(project.dir, 'app/package-lock.json'), 'utf8'));
      pkg.dependencies['is-number'] = '^7.0.0';
      lock.packages[''].dependencies['is-number'] = '^7.0.0';
      lock.packages['node_modules/is-number'] = {
        version: '7.0.0',
        integrity: IS_NUMBER_INTEGRITY,
        license: 'MIT',
        engines: { node: '>=0.12.0' },
      };
      project.commit('add is-number', {
        'app/package.json': `${JSON.stringify(pkg, null, 2)}\n`,
        'app/package-lock.json': `${JSON.stringify(lock, null, 2)}\n`,
      });

      const result = await project.run(['deploy']);
      expect(result.code, result.stderr).toBe(0);
      const id = releaseIdOf(result.stdout);
      ids.push(id);
      const newKey = envOf(id);
      expect(result.stdout).toMatch(new RegExp(`dependencies\\s+.*installed envs/${newKey}`));
      expect(newKey).not.toBe(oldKey);
      expect(envs().sort()).toEqual([oldKey, newKey].sort());
      expect(JSON.parse(readFileSync(at('releases', id, 'node_modules/is-number/package.json'), 'utf8')).version).toBe(
        '7.0.0',
      );
      expect(envOf(ids[0])).toBe(oldKey); // older releases keep their own environment
      // npm's cache lives in the deploy root and now holds the new package.
      const index = readdirSync(at('cache/npm/_cacache/index-v5'), { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => readFileSync(path.join(e.parentPath, e.name), 'utf8'))
        .join('\n');
      expect(index).toContain('is-number');
      expect(readdirSync(at('cache/npm/_cacache/content-v2'))).not.toEqual([]);
    },
  );

  it(
    'seven deploys with keepReleases 5 leave five releases, ' +
      'the newest live; purge removes environments no release uses',
    async () => {
      for (let i = 0; i < 4; i++) {
        const result = await project.run(['deploy']);
        expect(result.code, result.stderr).toBe(0);
        ids.push(releaseIdOf(result.stdout));
      }
      expect(ids).toHaveLength(7);
      expect(new Set(ids).size).toBe(7);
      expect(project.releases()).toEqual(ids.slice(2));
      expect(project.live()).toBe(ids[6]);
      // The first environment served only the two purged releases: it is gone too.
      const used = new Set(project.releases().map(envOf));
      expect(used.size).toBe(1);
      expect(envs()).toEqual([...used]);
      expect(project.revisions()).toHaveLength(7);
      expect(readdirSync(at('tmp'))).toEqual([]);
    },
  );

  it('`releases` lists every release with the live one marked', async () => {
    const result = await project.run(['releases']);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.split('\n').filter((l) => / ref HEAD$/.test(l)); // `  * <id>  <when>  ref HEAD`
    expect(lines).toHaveLength(5);
    for (const id of project.releases()) {
      const line = lines.filter((l) => l.includes(id));
      expect(line).toHaveLength(1);
      expect(line[0]).toMatch(id === project.live() ? new RegExp(`^\\s*\\* ${id} `) : new RegExp(`^\\s+${id} `));
    }
    expect(lines.filter((l) => /^\s*\* \d{4}\./.test(l))).toHaveLength(1);
  });

  it('`releases --json` prints exactly one JSON object on stdout (human output on stderr)', async () => {
    const result = await project.run(['--json', 'releases']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(1);
    const body = JSON.parse(result.stdout);
    expect(body).toMatchObject({ ok: true, exitCode: 0, tasks: [{ task: 'releases', ok: true }] });
    const rows = body.tasks[0].hosts.local.releases as Array<{
      id: string;
      live: boolean;
      ref: string;
      status: string;
    }>;
    expect(rows.map((r) => r.id)).toEqual([...project.releases()].reverse());
    expect(rows.filter((r) => r.live).map((r) => r.id)).toEqual([project.live()]);
    expect(rows.every((r) => r.status === 'ok' && r.ref === 'HEAD')).toBe(true);
    expect(result.stderr).toContain(project.live()!);
  });

  it('--dry-run prints the commands it would run and changes nothing on disk', async () => {
    const before = project.snapshot();
    const log = readFileSync(at('revisions.log'), 'utf8');
    const result = await project.run(['--dry-run', 'deploy']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('would run:');
    expect(result.stdout).toContain('sha256sum -c');
    expect(result.stdout).toMatch(/mv -T \S+\/\.current\.next \S+\/current/);
    expect(project.snapshot()).toEqual(before);
    expect(readFileSync(at('revisions.log'), 'utf8')).toBe(log);
  });
});

describe('--dry-run on a host never deployed to (deploy.config.json)', () => {
  let project: Project;
  beforeAll(() => {
    project = makeProject({ format: 'json' });
  });
  afterAll(() => project?.cleanup());

  it('creates no deploy root at all; then a real deploy with the .json config works', async () => {
    const dry = await project.run(['--dry-run', 'deploy']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('would run:');
    expect(existsSync(project.deployTo)).toBe(false);
    const real = await project.run(['deploy']);
    expect(real.code, real.stderr).toBe(0);
    expect(project.live()).toBe(releaseIdOf(real.stdout));
  });
});

describe('--dry-run says what it would do, and its summary matches the script it prints', () => {
  let project: Project;
  beforeAll(async () => {
    project = makeProject({ keepReleases: 1 });
    for (const n of [1, 2]) {
      project.commit(`change ${n}`, { 'app/CHANGES': `${n}\n` });
      expect((await project.run(['deploy'])).code).toBe(0);
    }
  });
  afterAll(() => project?.cleanup());

  /** Every step line of a dry run tells a plan ("would …"), a reason to skip, or nothing: never a result. */
  const expectHonest = (stdout: string) => {
    const steps = stdout.split('\n').filter((l) => /^\S \S+\s+\S+ \(dry-run\)/.test(l));
    expect(steps.length).toBeGreaterThan(3);
    for (const line of steps) expect(line).toMatch(/\(dry-run\)\s+[\d.]+s(?:\s+would \S.*)?$/);
    expect(stdout).not.toMatch(/; live: /);
    expect(stdout).toMatch(
      new RegExp(`^deploy: done in [\\d.]+s; would be live: ${releaseIdOf(stdout).replaceAll('.', '\\.')}$`, 'm'),
    );
  };
  /** The releases the printed purge script removes, and the count the step lines give. */
  const purges = (stdout: string) => ({
    script: new Set([...stdout.matchAll(/echo 'removed (\S+)'/g)].map((m) => m[1])).size,
    summary: [...stdout.matchAll(/^\S .*would .*\b(?:purge|remove) (\d+) releases?/gm)].reduce(
      (sum, m) => sum + Number(m[1]),
      0,
    ),
  });

  it('without services (the purge rides on the unlock)', async () => {
    const before = project.snapshot();
    const result = await project.run(['--dry-run', 'deploy']);
    expect(result.code, result.stderr).toBe(0);
    expectHonest(result.stdout);
    expect(purges(result.stdout)).toEqual({ script: 1, summary: 1 });
    expect(project.snapshot()).toEqual(before);
  });

  it('--json says it was a dry run, so its "live" is read as what would be live', async () => {
    const result = await project.run(['--json', '--dry-run', 'deploy']);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: true, dryRun: true });
    expect(JSON.parse((await project.run(['--json', 'releases'])).stdout).dryRun).toBeUndefined();
  });

  it('with services and a health check (configs, restart, health and purge steps of their own)', async () => {
    const program = path.join(project.dir, 'hello.conf');
    project.writeConfig({
      services: { nginx: false, supervisor: { ctl: 'false', program } },
      healthcheck: { url: 'http://127.0.0.1:9/health', expectStatus: 200, timeoutSeconds: 1 },
    });
    const before = project.snapshot();
    const result = await project.run(['--dry-run', 'deploy', 'restart']);
    expect(result.code, result.stderr).toBe(0);
    expectHonest(result.stdout);
    expect(result.stdout).toMatch(/restart \(dry-run\)\s+[\d.]+s\s+would restart hello$/m);
    expect(purges(result.stdout)).toEqual({ script: 1, summary: 1 });
    expect(project.snapshot()).toEqual(before);
    expect(existsSync(program)).toBe(false);
  });

  it("on two hosts, the end-of-task table does not call a host that was never touched 'ok'", async () => {
    const two = makeProject({
      hosts: ['a', 'b'].map((name) => ({ name, local: true, deployTo: path.join(project.dir, `deploy-${name}`) })),
    });
    try {
      const result = await two.run(['--dry-run', 'deploy']);
      expect(result.code, result.stderr).toBe(0);
      const rows = result.stdout.split('\n').filter((l) => /^\s+[ab]\s+\S+\s+[\d.]+s\s/.test(l));
      expect(rows).toHaveLength(2);
      for (const row of rows) expect(row).toMatch(/\s+dry-run, nothing changed$/);
      expect(existsSync(path.join(project.dir, 'deploy-a'))).toBe(false);
    } finally {
      two.cleanup();
    }
  });
});
