// The prebuilt entry (`npm run build`, then `node fabfile.mjs …`): the same tasks and output as
// `npx tsx fabfile.ts`, with the project's deploy.config.ts loaded through tsx's loader on demand.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, releaseIdOf, ROOT, runCli } from '../helpers/project.js';

const runBuilt = (args: string[]) => {
  const result = spawnSync(process.execPath, [path.join(ROOT, 'fabfile.mjs'), ...args], { encoding: 'utf8', env: { ...process.env, CI: 'true', NO_COLOR: '1' } });
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

  it('a config error exits 2 naming the key, as under tsx', () => {
    project.writeConfig({ keepReleases: 0 });
    const result = runBuilt(['--config', project.configFile, 'deploy']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/keepReleases/);
  });

  it('a deploy.config.ts that does not compile, or that throws, exits 2 naming the file, under either entry', async () => {
    const original = readFileSync(project.configFile, 'utf8');
    try {
      for (const [text, message] of [
        [`${original}\nexport const broken = {`, /Expected identifier but found end of file/],
        [`throw new Error('DATABASE_URL is not set');\n${original}`, /DATABASE_URL is not set/],
      ] as const) {
        writeFileSync(project.configFile, text);
        for (const result of [runBuilt(['--config', project.configFile, 'releases']), await project.run(['releases'])]) {
          expect(result.code, result.stderr).toBe(2);
          expect(result.stderr).toContain(`config ${project.configFile}: `);
          expect(result.stderr).toMatch(message);
        }
      }
      expect(readdirSync(project.dir).filter((f) => f.endsWith('.mjs'))).toEqual([]); // no compiled copy left behind
    } finally {
      writeFileSync(project.configFile, original);
    }
  });
});
