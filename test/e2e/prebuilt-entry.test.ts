// The prebuilt entry (`npm run build`, then `node fabfile.mjs …`): the same tasks and output as
// `npx tsx fabfile.ts`, with the project's deploy.config.ts loaded through tsx's loader on demand.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_ESBUILD } from '../helpers/no-esbuild.js';
import { makeProject, type Project, releaseIdOf, ROOT, runCli } from '../helpers/project.js';

const runBuilt = (args: string[], root = ROOT, nodeOptions: string[] = []) => {
  const env = { ...process.env, CI: 'true', NO_COLOR: '1' };
  const result = spawnSync(process.execPath, [...nodeOptions, path.join(root, 'fabfile.mjs'), ...args], {
    encoding: 'utf8',
    env,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
};

describe('node fabfile.mjs', () => {
  let project: Project;
  beforeAll(() => {
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT });
    project = makeProject({ keepReleases: 5 });
  });
  afterAll(() => project?.cleanup());

  it('lists the same tasks as npx tsx fabfile.ts', async () => {
    const built = runBuilt(['--list']);
    expect(built.code).toBe(0);
    expect(built.stdout).toBe((await runCli(['--list'])).stdout);
  });

  it('deploys and rolls back with a deploy.config.ts in a project that is not an ES module package', () => {
    expect(project.configFile).toMatch(/deploy\.config\.ts$/);
    const first = runBuilt(['--config', project.configFile, 'deploy']);
    expect(first.code, first.stderr).toBe(0);
    project.commit('second', { 'app/CHANGES': 'two\n' });
    const second = runBuilt(['--config', project.configFile, 'deploy']);
    expect(second.code, second.stderr).toBe(0);
    expect(project.live()).toBe(releaseIdOf(second.stdout));
    const back = runBuilt(['--config', project.configFile, 'rollback']);
    expect(back.code, back.stderr).toBe(0);
    expect(project.live()).toBe(releaseIdOf(first.stdout));
  });

  it('an unchanged deploy.config.ts is compiled once: the next run takes it from the cache and loads no esbuild', () => {
    const first = runBuilt(['--config', project.configFile, 'releases']);
    expect(first.code, first.stderr).toBe(0);
    expect(readdirSync(path.join(project.dir, 'node_modules/.cache/slipway'))).toEqual(
      expect.arrayContaining([expect.stringMatching(/^config-\w+\.json$/), expect.stringMatching(/^config-\w+\.mjs$/)]),
    );
    const second = runBuilt(['--config', project.configFile, 'releases'], ROOT, [NO_ESBUILD]);
    expect(second.code, second.stderr).toBe(0);
    const timeless = (out: string) => out.replace(/\d+\.\d+s/g, 'Ns');
    expect(timeless(second.stdout)).toBe(timeless(first.stdout));
    // The hook works: a config not compiled yet needs esbuild, and this run cannot load it.
    const other = path.join(project.dir, 'other.config.ts');
    writeFileSync(other, readFileSync(project.configFile, 'utf8'));
    const refused = runBuilt(['--config', other, 'releases'], ROOT, [NO_ESBUILD]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('esbuild is not to be loaded');
  });

  it('a module the config imports changed to the same size: its content tells, and it is compiled again', () => {
    const original = readFileSync(project.configFile, 'utf8');
    const keep = path.join(project.dir, 'keep.ts');
    try {
      writeFileSync(keep, 'export const keep: number = 5;\n');
      writeFileSync(
        project.configFile,
        `import { keep } from './keep.js';\n${original.replace('"keepReleases": 5', '"keepReleases": keep')}`,
      );
      const first = runBuilt(['--config', project.configFile, 'releases']);
      expect(first.code, first.stderr).toBe(0);
      writeFileSync(keep, 'export const keep: number = 0;\n'); // the same size
      const second = runBuilt(['--config', project.configFile, 'releases']);
      expect(second.code).toBe(2);
      expect(second.stderr).toMatch(/keepReleases/);
    } finally {
      writeFileSync(project.configFile, original);
      rmSync(keep, { force: true });
    }
  });

  it("import.meta.dirname in a cached config is the config's folder", () => {
    const original = readFileSync(project.configFile, 'utf8');
    try {
      writeFileSync(
        project.configFile,
        original.replace(
          'export default defineConfig({',
          'if (import.meta.dirname !== process.env.EXPECTED) throw new Error(`dirname ${import.meta.dirname}`);\n' +
            'export default defineConfig({',
        ),
      );
      for (let run = 0; run < 2; run++) {
        const result = spawnSync(
          process.execPath,
          [path.join(ROOT, 'fabfile.mjs'), '--config', project.configFile, 'releases'],
          { encoding: 'utf8', env: { ...process.env, CI: 'true', NO_COLOR: '1', EXPECTED: project.dir } },
        );
        expect(result.status, result.stderr).toBe(0);
      }
    } finally {
      writeFileSync(project.configFile, original);
    }
  });

  it('a config error exits 2 naming the key, as under tsx', () => {
    project.writeConfig({ keepReleases: 0 });
    const result = runBuilt(['--config', project.configFile, 'deploy']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/keepReleases/);
  });

  it(
    'a deploy.config.ts that does not compile, or that throws, ' + 'exits 2 naming the file, under either entry',
    async () => {
      const original = readFileSync(project.configFile, 'utf8');
      try {
        for (const [text, message] of [
          [`${original}\nexport const broken = {`, /Expected identifier but found end of file/],
          [`throw new Error('DATABASE_URL is not set');\n${original}`, /DATABASE_URL is not set/],
        ] as const) {
          writeFileSync(project.configFile, text);
          for (const result of [
            runBuilt(['--config', project.configFile, 'releases']),
            await project.run(['releases']),
          ]) {
            expect(result.code, result.stderr).toBe(2);
            expect(result.stderr).toContain(`config ${project.configFile}: `);
            expect(result.stderr).toMatch(message);
          }
        }
        expect(readdirSync(project.dir).filter((f) => f.endsWith('.mjs'))).toEqual([]); // no compiled copy left behind
      } finally {
        writeFileSync(project.configFile, original);
      }
    },
  );
});

describe('fabfile.mjs records what it was built from, and refuses to run once that changed', () => {
  // A copy of the source tree (the build writes fabfile.mjs beside fabfile.ts; edits here touch no other test's files).
  let tree: string;
  const skip = new Set(['node_modules', '.git', '.deploy', 'fabfile.mjs', 'test']);
  const build = () => execFileSync('npm', ['run', '--silent', 'build'], { cwd: tree });
  const edit = (file: string, change: (text: string) => string) =>
    writeFileSync(path.join(tree, file), change(readFileSync(path.join(tree, file), 'utf8')));
  /** The files the bundle recorded (relative to it), as embedded at its top. */
  const recorded = (): Record<string, unknown> => {
    const match = /^\(function refuseIfChanged[\s\S]*?\}\)\((\{.*?\}), /m.exec(
      readFileSync(path.join(tree, 'fabfile.mjs'), 'utf8'),
    );
    expect(match, 'fabfile.mjs embeds no record of its inputs').not.toBeNull();
    return JSON.parse(match![1]);
  };
  beforeAll(() => {
    tree = mkdtempSync(path.join(tmpdir(), 'slipway-build-'));
    cpSync(ROOT, tree, { recursive: true, filter: (from) => !skip.has(path.relative(ROOT, from).split(path.sep)[0]) });
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(tree, 'node_modules'));
    build();
  });
  afterAll(() => tree && rmSync(tree, { recursive: true, force: true }));

  it(
    'an unchanged tree runs, and the start-up check reads only ' +
      'the files it recorded (fabfile.ts and every bundled module)',
    async () => {
      const files = Object.keys(recorded());
      expect(files).toEqual(
        expect.arrayContaining(['fabfile.ts', 'tasks/index.ts', 'tasks/cli/main.ts', 'tasks/config/schema.ts']),
      );
      expect(files.some((f) => f.includes('/zod/'))).toBe(true); // bundled too, so recorded too
      // Node's permission model: any read beyond fabfile.mjs and the recorded files fails the run.
      const flag = process.allowedNodeEnvironmentFlags.has('--permission')
        ? '--permission'
        : '--experimental-permission';
      const reads = [path.join(tree, 'fabfile.mjs'), ...files.map((f) => path.resolve(tree, f))].map(
        (f) => `--allow-fs-read=${f}`,
      );
      const result = runBuilt(['--list'], tree, [flag, ...reads]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toBe((await runCli(['--list'])).stdout);
    },
  );

  it('the AWS SDK is not bundled: fabfile.mjs imports it by name, only when an s3 store is opened', () => {
    expect(Object.keys(recorded()).filter((f) => /node_modules\/@(aws-sdk|smithy|aws-crypto)\//.test(f))).toEqual([]);
    const text = readFileSync(path.join(tree, 'fabfile.mjs'), 'utf8');
    expect(text).toContain('import("@aws-sdk/client-s3")');
    expect(text).toContain('import("@aws-sdk/s3-request-presigner")');
  });

  it("a task's help text changed in fabfile.ts: exit 2, rebuild; after npm run build the new text is listed", () => {
    edit('fabfile.ts', (text) =>
      text.replace("'Remove releases beyond keepReleases now'", "'Remove old releases (edited)'"),
    );
    const stale = runBuilt(['--list'], tree);
    expect(stale.code).toBe(2);
    expect(stale.stderr).toContain('fabfile.ts changed since `npm run build`: rebuild');
    expect(stale.stdout).toBe('');
    build();
    const fresh = runBuilt(['--list'], tree);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stdout).toMatch(/^\s+purge\s+Remove old releases \(edited\)$/m);
  });

  it('a changed bundled module is refused too, naming it; put back as it was, the same bundle runs again', () => {
    const original = readFileSync(path.join(tree, 'tasks/lib/sh.ts'), 'utf8');
    edit('tasks/lib/sh.ts', (text) => text.replace('// POSIX', '// posix')); // the same size: only its content tells
    expect(readFileSync(path.join(tree, 'tasks/lib/sh.ts'), 'utf8')).not.toBe(original);
    const stale = runBuilt(['releases'], tree);
    expect(stale.code).toBe(2);
    expect(stale.stderr).toContain('tasks/lib/sh.ts changed since `npm run build`: rebuild');
    writeFileSync(path.join(tree, 'tasks/lib/sh.ts'), original);
    expect(runBuilt(['--list'], tree).code).toBe(0);
  });
});
