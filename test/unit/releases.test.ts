// Pure release decisions: ids, rollback target, purge choice.
import { describe, expect, it } from 'vitest';
import { isReleaseId, newReleaseId, RollbackRefused, selectPurge, selectRollbackTarget } from '../../tasks/core/releases.js';

const ids = ['2026.01.01-00.00.01-aaaaaaa', '2026.01.02-00.00.01-bbbbbbb', '2026.01.03-00.00.01-ccccccc', '2026.01.04-00.00.01-ddddddd'];

describe('release ids', () => {
  it('are UTC, zero-padded, with the 7-char sha', () => {
    expect(newReleaseId(new Date(Date.UTC(2013, 10, 18, 2, 5, 38)), 'de20852ffff')).toBe('2013.11.18-02.05.38-de20852');
    expect(newReleaseId(new Date('2026-03-04T05:06:07+09:00'), 'abcdef0123')).toBe('2026.03.03-20.06.07-abcdef0');
  });
  it('sort chronologically by name', () => {
    expect([...ids].reverse().sort()).toEqual(ids);
  });
  it('reject anything else', () => {
    for (const bad of ['../x', '/etc', '', 'current', `${ids[0]}x`, `${ids[0]};rm -rf /`, '$(id)', 'x'.repeat(500), '2026.01.01-00.00.01-ABCDEFG']) expect(isReleaseId(bad)).toBe(false);
    expect(isReleaseId(ids[0])).toBe(true);
  });
  it('refuse a non-sha', () => {
    expect(() => newReleaseId(new Date(), 'main')).toThrow(/not a commit sha/);
  });
});

describe('selectRollbackTarget', () => {
  const state = { releases: ids, live: ids[3] };
  it('previous: one back from the live one, at the oldest refuses', () => {
    expect(selectRollbackTarget(state, { kind: 'previous' })).toBe(ids[2]);
    expect(selectRollbackTarget({ ...state, live: ids[1] }, { kind: 'previous' })).toBe(ids[0]);
    expect(() => selectRollbackTarget({ ...state, live: ids[0] }, { kind: 'previous' })).toThrow(/already at the oldest/);
  });
  it('previous skips bad releases', () => {
    expect(selectRollbackTarget({ ...state, bad: [ids[2]] }, { kind: 'previous' })).toBe(ids[1]);
  });
  it('current: the newest good one (or the newest with force)', () => {
    expect(selectRollbackTarget({ ...state, live: ids[0] }, { kind: 'current' })).toBe(ids[3]);
    expect(selectRollbackTarget({ ...state, live: ids[0], bad: [ids[3]] }, { kind: 'current' })).toBe(ids[2]);
    expect(selectRollbackTarget({ ...state, live: ids[0], bad: [ids[3]] }, { kind: 'current' }, true)).toBe(ids[3]);
  });
  it('an id: present, absent, malformed, bad', () => {
    expect(selectRollbackTarget(state, { kind: 'release', id: ids[1] })).toBe(ids[1]);
    expect(() => selectRollbackTarget(state, { kind: 'release', id: '2020.01.01-00.00.00-abcdef0' })).toThrow(RollbackRefused);
    expect(() => selectRollbackTarget(state, { kind: 'release', id: '../../etc' })).toThrow(/not a release id: "..\/..\/etc"; releases: 2026/);
    expect(() => selectRollbackTarget({ ...state, bad: [ids[1]] }, { kind: 'release', id: ids[1] })).toThrow(/marked bad; use --force/);
    expect(selectRollbackTarget({ ...state, bad: [ids[1]] }, { kind: 'release', id: ids[1] }, true)).toBe(ids[1]);
  });
  it('no live release: nothing to step back from', () => {
    expect(() => selectRollbackTarget({ releases: ids, live: null }, { kind: 'previous' })).toThrow(/no live release/);
  });
});

describe('selectPurge', () => {
  it('keeps the newest N, never the live one', () => {
    expect(selectPurge({ releases: ids, live: ids[3], keep: 2 })).toEqual([ids[0], ids[1]]);
    expect(selectPurge({ releases: ids, live: ids[0], keep: 2 })).toEqual([ids[1]]);
    expect(selectPurge({ releases: ids, live: ids[3], keep: 10 })).toEqual([]);
  });
  it('removes bad ones first and does not count them, so failures never purge the last good release', () => {
    expect(selectPurge({ releases: ids, live: ids[0], bad: [ids[1], ids[2], ids[3]], keep: 1 })).toEqual([ids[1], ids[2], ids[3]]);
    expect(selectPurge({ releases: ids, live: ids[1], bad: [ids[3]], keep: 2 })).toEqual([ids[0], ids[3]]);
  });
  it('keeps releases in use', () => {
    expect(selectPurge({ releases: ids, live: ids[3], keep: 1, inUse: [ids[0]] })).toEqual([ids[1], ids[2]]);
  });
  it('refuses keep < 1', () => {
    expect(() => selectPurge({ releases: ids, live: null, keep: 0 })).toThrow(RangeError);
  });
});
