// Rollback on the local target (deploy.config.mjs): previous, current, <id>, and ids that must be
// refused. A rollback never deletes a release and logs every switch; a refused one changes nothing.
import { existsSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, releaseIdOf } from '../helpers/project.js';

describe('rollback on the local target', () => {
  let project: Project;
  const marker = `/tmp/slipway-pwned-${process.pid}`;
  const ids: string[] = [];

  beforeAll(async () => {
    project = makeProject({ format: 'mjs', keepReleases: 10 });
    rmSync(marker, { force: true });
    for (let i = 0; i < 4; i++) {
      const result = await project.run(['deploy']);
      expect(result.code, result.stderr).toBe(0);
      ids.push(releaseIdOf(result.stdout));
    }
    expect(project.releases()).toEqual(ids);
    expect(project.live()).toBe(ids[3]);
  });
  afterAll(() => {
    project?.cleanup();
    rmSync(marker, { force: true });
  });

  it('rollback three times in a row steps back one release each time, and logs each', async () => {
    for (const [from, to] of [
      [ids[3], ids[2]],
      [ids[2], ids[1]],
      [ids[1], ids[0]],
    ]) {
      const lines = project.revisions().length;
      const result = await project.run(['rollback']);
      expect(result.code, result.stderr).toBe(0);
      expect(project.live()).toBe(to);
      expect(result.stdout).toContain(`${from} → ${to}`);
      const log = project.revisions();
      expect(log).toHaveLength(lines + 1);
      expect(log.at(-1)).toMatch(new RegExp(`Z rollback ${to} from="${from}" by=\\S+$`));
    }
    expect(project.releases()).toEqual(ids); // nothing deleted
  });

  it('at the oldest release it exits 1 with a clear message and changes nothing', async () => {
    const before = project.snapshot();
    const lines = project.revisions().length;
    const result = await project.run(['rollback']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`already at the oldest release (${ids[0]}); nothing to roll back to`);
    expect(project.live()).toBe(ids[0]);
    expect(project.revisions()).toHaveLength(lines);
    expect(project.snapshot()).toEqual(before);
  });

  it('`releases` marks the live release, which is now the oldest', async () => {
    const result = await project.run(['releases']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^\\s*\\* ${ids[0]} `, 'm'));
    expect(result.stdout).not.toMatch(new RegExp(`^\\s*\\* ${ids[3]} `, 'm'));
  });

  it('rollback:current returns to the newest release', async () => {
    const result = await project.run(['rollback:current']);
    expect(result.code, result.stderr).toBe(0);
    expect(project.live()).toBe(ids[3]);
    expect(project.revisions().at(-1)).toContain(`rollback ${ids[3]} from="${ids[0]}"`);
  });

  it('rollback:current on the newest release changes nothing and says so', async () => {
    const lines = project.revisions().length;
    const snapshot = project.snapshot();
    const result = await project.run(['rollback:current']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/switch \(skipped\)\s+\S+\s+already on /);
    expect(project.live()).toBe(ids[3]);
    expect(project.revisions()).toHaveLength(lines);
    expect(project.snapshot()).toEqual(snapshot);
  });

  it('rollback:<id> goes to that release', async () => {
    const result = await project.run([`rollback:${ids[1]}`]);
    expect(result.code, result.stderr).toBe(0);
    expect(project.live()).toBe(ids[1]);
    expect(project.revisions().at(-1)).toContain(`rollback ${ids[1]} from="${ids[3]}"`);
    expect(project.releases()).toEqual(ids);
  });

  const badIds = [
    '../../etc',
    '/etc',
    '2020.01.01-00.00.00-abcdef0', // well formed, not there
    `$(touch ${marker})`,
    `\`touch ${marker}\``,
    `x;touch ${marker}`,
    `${'1'.repeat(300)}`,
  ];
  for (const bad of badIds) {
    it(`rollback:${bad.slice(0, 32)} exits 1, lists the available ids and changes nothing`, async () => {
      const before = project.snapshot();
      const live = project.live();
      const lines = project.revisions().length;
      const result = await project.run([`rollback:${bad}`]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/rollback refused, nothing changed/);
      expect(result.stderr).toContain(bad.startsWith('2020') ? `no release "${bad}"` : `not a release id: "${bad}"`);
      expect(result.stderr).toContain(`releases: ${ids.join(', ')}`);
      expect(project.live()).toBe(live);
      expect(project.revisions()).toHaveLength(lines);
      expect(project.snapshot()).toEqual(before);
      expect(existsSync(marker)).toBe(false);
    });
  }

  it('rollback with two arguments or an empty argument is a usage error (exit 2)', async () => {
    const two = await project.run([`rollback:${ids[0]},${ids[1]}`]);
    expect(two.code).toBe(2);
    expect(two.stderr).toContain('rollback takes one argument');
    const empty = await project.run(['rollback:']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('empty argument');
    expect(project.live()).toBe(ids[1]);
  });
});
