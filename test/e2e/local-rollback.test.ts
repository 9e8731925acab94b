// Rollback semantics on the local target: previous, current, <id>, bad ids; never deletes; always logged.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject } from '../helpers/project.js';

describe('rollback on the local target', () => {
  const project = makeProject({ keepReleases: 10 });
  afterAll(() => project.cleanup());
  let ids: string[];

  beforeAll(async () => {
    for (let i = 0; i < 4; i++) expect((await project.run(['deploy'])).code).toBe(0);
    ids = project.releases();
    expect(ids).toHaveLength(4);
  });

  it('steps back one release per call, three times in a row', async () => {
    for (const expected of [ids[2], ids[1], ids[0]]) {
      const result = await project.run(['rollback']);
      expect(result.code, result.stderr).toBe(0);
      expect(project.live()).toBe(expected);
    }
    expect(project.releases()).toEqual(ids);
  });

  it('at the oldest release it exits 1, says so, and changes nothing', async () => {
    const lines = project.revisions().length;
    const result = await project.run(['rollback']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('already at the oldest release');
    expect(project.live()).toBe(ids[0]);
    expect(project.revisions()).toHaveLength(lines);
  });

  it('rollback:current returns to the newest, rollback:<id> goes to that one; each is logged', async () => {
    const lines = project.revisions().length;
    expect((await project.run(['rollback:current'])).code).toBe(0);
    expect(project.live()).toBe(ids[3]);
    expect((await project.run([`rollback:${ids[1]}`])).code).toBe(0);
    expect(project.live()).toBe(ids[1]);
    const log = project.revisions();
    expect(log).toHaveLength(lines + 2);
    expect(log[log.length - 1]).toContain(`rollback ${ids[1]}`);
  });

  it('several tasks run in order: rollback:current then releases', async () => {
    const result = await project.run(['rollback:current', 'releases']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`* ${ids[3]}`);
  });

  const marker = `/tmp/slipway-pwned-${process.pid}`;
  for (const bad of ['../../etc', '/etc', '2020.01.01-00.00.00-abcdef0', `$(touch ${marker})`, '`touch ' + marker + '`', 'a;touch ' + marker, 'x'.repeat(300)]) {
    it(`refuses rollback:${bad.slice(0, 40)}, lists the ids, changes nothing`, async () => {
      const live = project.live();
      const lines = project.revisions().length;
      const result = await project.run([`rollback:${bad}`]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(ids[0]);
      expect(project.live()).toBe(live);
      expect(project.revisions()).toHaveLength(lines);
      expect(existsSync(marker)).toBe(false);
    });
  }

  it('rollback: with an empty argument is a usage error (exit 2)', async () => {
    const result = await project.run(['rollback:']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('empty argument');
  });
});
