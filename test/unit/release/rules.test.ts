// Pure release decisions (tasks/release/rules.ts): ids, rollback target, what purge removes.
import { describe, expect, it } from 'vitest';
import {
  chooseReleaseId,
  isReleaseId,
  newReleaseId,
  parseRollbackArg,
  RollbackRefused,
  selectPurge,
  selectRollbackTarget,
  sortReleases,
  planPurge,
} from '../../../tasks/release/rules.js';
import { ENV_IN_RELEASE } from '../../../tasks/release/metadata.js';
import { parseInspection } from '../../../tasks/scripts/inspect.js';
import { A, B, SAMPLE } from '../../helpers/unit.js';

// Oldest first, as sortReleases returns them.
const ids = [
  '2026.01.01-00.00.01-aaaaaaa',
  '2026.01.02-00.00.01-bbbbbbb',
  '2026.01.03-00.00.01-ccccccc',
  '2026.01.04-00.00.01-ddddddd',
  '2026.01.05-00.00.01-eeeeeee',
];
const [a, b, c, d, e] = ids;

/** The RollbackRefused message, or fails the test if the call did not refuse. */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(RollbackRefused);
    return (error as Error).message;
  }
  throw new Error('expected RollbackRefused, got a target');
}

describe('newReleaseId', () => {
  it('is YYYY.MM.DD-HH.MM.SS-<sha7> in UTC, every field zero-padded', () => {
    expect(newReleaseId(new Date(Date.UTC(2024, 0, 2, 3, 4, 5)), 'abcdef0123456789')).toBe(
      '2024.01.02-03.04.05-abcdef0',
    );
    expect(newReleaseId(new Date(Date.UTC(2013, 10, 18, 22, 59, 9, 999)), 'de20852')).toBe(
      '2013.11.18-22.59.09-de20852',
    );
  });
  it('uses the UTC date and time, not the local ones', () => {
    // 05:06:07 at +09:00 is 20:06:07 the day before in UTC.
    expect(newReleaseId(new Date('2026-03-04T05:06:07+09:00'), 'abcdef0')).toBe('2026.03.03-20.06.07-abcdef0');
    expect(newReleaseId(new Date('2025-12-31T23:30:00-02:00'), '0000000')).toBe('2026.01.01-01.30.00-0000000');
  });
  it('is itself a valid release id, and sorts chronologically by name', () => {
    const made = [Date.UTC(2026, 0, 9, 23, 59, 59), Date.UTC(2026, 0, 10, 0, 0, 0), Date.UTC(2026, 9, 1, 0, 0, 0)].map(
      (t) => newReleaseId(new Date(t), 'fffffff'),
    );
    for (const id of made) expect(isReleaseId(id)).toBe(true);
    expect([...made].reverse().sort()).toEqual(made);
  });
  it('refuses something that is not a lower-case hex sha of 7 to 40 characters', () => {
    for (const sha of ['main', 'abc123', 'ABCDEF0', 'abcdef0;x', '', 'a'.repeat(41)]) {
      expect(() => newReleaseId(new Date(), sha), sha).toThrow(/not a commit sha/);
    }
  });
});

describe('chooseReleaseId', () => {
  // The clock as a list of instants, one per call: what chooseReleaseId saw each time it looked.
  const clock = (...instants: string[]) => {
    const left = instants.map((t) => new Date(t));
    return () => left.shift() ?? new Date(instants[instants.length - 1]);
  };

  it('a second with a release of another commit is skipped: ids keep sorting by time', async () => {
    const taken = new Set(['2026.01.01-00.00.01-fffffff']);
    const id = await chooseReleaseId('0000000aaaa', taken, clock('2026-01-01T00:00:01.990Z', '2026-01-01T00:00:02Z'));
    expect(id).toBe('2026.01.01-00.00.02-0000000');
    expect([...taken, id].sort()).toEqual(['2026.01.01-00.00.01-fffffff', id]);
  });

  it('a free second is taken at once', async () => {
    const taken = new Set(['2026.01.01-00.00.01-fffffff']);
    expect(await chooseReleaseId('0000000aaaa', taken, clock('2026-01-01T00:00:03Z'))).toBe(
      '2026.01.01-00.00.03-0000000',
    );
  });
});

describe('isReleaseId', () => {
  it('accepts well-formed ids', () => {
    for (const id of ids) expect(isReleaseId(id)).toBe(true);
  });
  it('rejects traversal, absolute paths, over-long values and shell metacharacters', () => {
    const bad = [
      '../x',
      '../../etc',
      '/etc',
      `/srv/app/releases/${a}`,
      `releases/${a}`,
      `${a}/..`,
      '.',
      '',
      'current',
      `${a}x`,
      `x${a}`,
      `${a}${a}`,
      '9'.repeat(400),
      `${a}\n`,
      `\n${a}`,
      ` ${a}`,
      `${a};rm -rf /`,
      '$(touch /tmp/pwned)',
      '`id`',
      'a|b',
      'a&b',
      "it's",
      '2026.01.01-00.00.01-ABCDEFG',
      '2026.1.1-0.0.1-aaaaaaa',
    ];
    for (const value of bad) expect(isReleaseId(value), JSON.stringify(value)).toBe(false);
  });
  it('sortReleases drops anything that is not an id and sorts the rest', () => {
    expect(sortReleases([c, 'junk', a, '../x', b])).toEqual([a, b, c]);
  });
});

describe('parseRollbackArg', () => {
  it('no argument, current, or an id (checked later)', () => {
    expect(parseRollbackArg(undefined)).toEqual({ kind: 'previous' });
    expect(parseRollbackArg('current')).toEqual({ kind: 'current' });
    expect(parseRollbackArg('../x')).toEqual({ kind: 'release', id: '../x' });
  });
});

describe('selectRollbackTarget', () => {
  const state = { releases: [...ids].reverse(), live: e };

  it('previous steps back one release at a time, whatever order the releases come in', () => {
    expect(selectRollbackTarget(state, { kind: 'previous' })).toBe(d);
    expect(selectRollbackTarget({ ...state, live: d }, { kind: 'previous' })).toBe(c);
    expect(selectRollbackTarget({ ...state, live: b }, { kind: 'previous' })).toBe(a);
  });
  it('previous at the oldest release refuses, naming it', () => {
    expect(refusal(() => selectRollbackTarget({ ...state, live: a }, { kind: 'previous' }))).toBe(
      `already at the oldest release (${a}); nothing to roll back to`,
    );
    expect(refusal(() => selectRollbackTarget({ releases: [a], live: a }, { kind: 'previous' }))).toMatch(
      /already at the oldest/,
    );
  });
  it('previous with no live release (or a live one that is gone) refuses and lists the releases', () => {
    expect(refusal(() => selectRollbackTarget({ ...state, live: null }, { kind: 'previous' }))).toBe(
      `no live release to step back from; releases: ${ids.join(', ')}`,
    );
    expect(refusal(() => selectRollbackTarget({ releases: [a, b], live: c }, { kind: 'previous' }))).toMatch(
      /no live release/,
    );
    expect(refusal(() => selectRollbackTarget({ releases: [], live: null }, { kind: 'previous' }))).toMatch(
      /releases: \(none\)/,
    );
  });
  it('previous skips releases marked bad; when only bad ones are older it refuses', () => {
    expect(selectRollbackTarget({ ...state, bad: [d] }, { kind: 'previous' })).toBe(c);
    expect(selectRollbackTarget({ ...state, bad: [d, c] }, { kind: 'previous' })).toBe(b);
    expect(refusal(() => selectRollbackTarget({ ...state, live: c, bad: [a, b] }, { kind: 'previous' }))).toMatch(
      /already at the oldest/,
    );
  });
  it('current returns to the newest release, skipping bad ones unless forced', () => {
    expect(selectRollbackTarget({ ...state, live: b }, { kind: 'current' })).toBe(e);
    expect(selectRollbackTarget({ ...state, live: e }, { kind: 'current' })).toBe(e);
    expect(selectRollbackTarget({ ...state, live: b, bad: [e] }, { kind: 'current' })).toBe(d);
    expect(selectRollbackTarget({ ...state, live: b, bad: [e] }, { kind: 'current' }, true)).toBe(e);
    expect(refusal(() => selectRollbackTarget({ releases: [a], live: a, bad: [a] }, { kind: 'current' }))).toMatch(
      /no release to return to/,
    );
    expect(refusal(() => selectRollbackTarget({ releases: [], live: null }, { kind: 'current' }))).toMatch(
      /no release to return to; releases: \(none\)/,
    );
  });
  it('an id that is present is the target, even an older or the live one', () => {
    expect(selectRollbackTarget(state, { kind: 'release', id: b })).toBe(b);
    expect(selectRollbackTarget({ ...state, live: a }, { kind: 'release', id: d })).toBe(d);
    expect(selectRollbackTarget(state, { kind: 'release', id: e })).toBe(e);
  });
  it('a well-formed id that is absent refuses and lists the releases there', () => {
    expect(refusal(() => selectRollbackTarget(state, { kind: 'release', id: '2020.01.01-00.00.00-abcdef0' }))).toBe(
      `no release "2020.01.01-00.00.00-abcdef0"; releases: ${ids.join(', ')}`,
    );
  });
  it('a malformed id refuses as "not a release id" and lists the releases', () => {
    for (const id of ['../../etc', '/etc', '$(touch /tmp/pwned)', `${a};id`, 'x'.repeat(300)]) {
      expect(refusal(() => selectRollbackTarget(state, { kind: 'release', id }))).toBe(
        `not a release id: "${id}"; releases: ${ids.join(', ')}`,
      );
    }
  });
  it('an id marked bad is refused unless forced', () => {
    expect(refusal(() => selectRollbackTarget({ ...state, bad: [b] }, { kind: 'release', id: b }))).toBe(
      `release ${b} is marked bad; use --force to roll back to it anyway`,
    );
    expect(selectRollbackTarget({ ...state, bad: [b] }, { kind: 'release', id: b }, true)).toBe(b);
  });
  it('ignores directory names that are not release ids', () => {
    expect(selectRollbackTarget({ releases: [a, 'junk', '../x', b], live: b }, { kind: 'previous' })).toBe(a);
    expect(
      refusal(() => selectRollbackTarget({ releases: [a, 'junk'], live: a }, { kind: 'release', id: 'junk' })),
    ).toMatch(/not a release id: "junk"; releases: 2026\.01\.01-00\.00\.01-aaaaaaa$/);
  });
});

describe('selectPurge', () => {
  it('keeps the newest N and returns the rest, oldest first', () => {
    expect(selectPurge({ releases: [...ids].reverse(), live: e, keep: 2 })).toEqual([a, b, c]);
    expect(selectPurge({ releases: ids, live: e, keep: 5 })).toEqual([]);
    expect(selectPurge({ releases: ids, live: e, keep: 50 })).toEqual([]);
    expect(selectPurge({ releases: ids, live: e, keep: 1 })).toEqual([a, b, c, d]);
  });
  it('never removes the live release, even an old one (it is kept on top of the N newest)', () => {
    expect(selectPurge({ releases: ids, live: a, keep: 2 })).toEqual([b, c]);
    expect(selectPurge({ releases: ids, live: b, keep: 1 })).toEqual([a, c, d]);
  });
  it('removes bad releases first and does not count them towards keep', () => {
    // keep 2 good ones: c and e; d is bad and goes although it is newer.
    expect(selectPurge({ releases: ids, live: e, bad: [d], keep: 2 })).toEqual([a, b, d]);
    // Every newer release failed: the last good one (live) survives, the bad ones go.
    expect(selectPurge({ releases: ids, live: a, bad: [b, c, d, e], keep: 1 })).toEqual([b, c, d, e]);
  });
  it('a bad release that is live is not removed', () => {
    expect(selectPurge({ releases: ids, live: e, bad: [e], keep: 1 })).toEqual([a, b, c]);
  });
  it('keeps releases in use by a running program', () => {
    expect(selectPurge({ releases: ids, live: e, keep: 1, inUse: [a, c] })).toEqual([b, d]);
  });
  it('ignores names that are not release ids (never removes them)', () => {
    expect(selectPurge({ releases: [...ids, 'notes', '../x'], live: e, keep: 4 })).toEqual([a]);
  });
  it('refuses a keep that is not a whole number of at least 1', () => {
    for (const keep of [0, -1, 1.5, Number.NaN])
      expect(() => selectPurge({ releases: ids, live: e, keep })).toThrow(RangeError);
  });
});

describe('planPurge', () => {
  it('removes releases beyond keep (bad ones first) and the environments no kept release uses', () => {
    // keep 1: D is the newest good release, C stays because it is live, B is bad and goes first.
    const state = parseInspection(SAMPLE.replace(`"envKey":"node-3","sta`, `"envKey":"node-3","status":"ok"}`));
    expect(planPurge(state, 1)).toEqual({ releases: [A, B], envs: ['node-1'] });
    expect(planPurge(state, 2)).toEqual({ releases: [A, B], envs: ['node-1'] });
    expect(planPurge(state, 10)).toEqual({ releases: [B], envs: [] });
  });
  it('keeps every environment when a kept release has no metadata (it might use any)', () => {
    expect(planPurge(parseInspection(SAMPLE), 1)).toEqual({ releases: [A, B], envs: [] });
  });
  it('an environment nothing uses any more is removed even when no release is', () => {
    const state = parseInspection(
      `@@current releases/${A}\n@@release ${A}\n` +
        `@@meta ${A} {"id":"${A}","envKey":"node-2","status":"ok"}\n@@env node-1\n@@env node-2\n`,
    );
    expect(planPurge(state, 5)).toEqual({ releases: [], envs: ['node-1'] });
  });
  it('a release with its environment inside (a prebuilt artifact) keeps none of envs/', () => {
    const state = parseInspection(
      `@@current releases/${A}\n@@release ${A}\n` +
        `@@meta ${A} {"id":"${A}","envKey":"${ENV_IN_RELEASE}","status":"ok"}\n@@env node-1\n`,
    );
    expect(planPurge(state, 5)).toEqual({ releases: [], envs: ['node-1'] });
  });
});
