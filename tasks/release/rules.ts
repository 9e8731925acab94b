// Pure decisions about releases: naming, ordering, rollback target, what purge removes.
import { createHash } from 'node:crypto';
import type { DependencyType } from '../config/types.js';
import { SlipwayError } from '../lib/errors.js';
import { badReleases, type HostState } from './state.js';

const RELEASE_ID = /^\d{4}\.\d{2}\.\d{2}-\d{2}\.\d{2}\.\d{2}-[0-9a-f]{7}$/;

export function isReleaseId(value: string): boolean {
  return RELEASE_ID.test(value);
}

/** `YYYY.MM.DD-HH.MM.SS-<sha7>` in UTC: sorts chronologically by name. */
export function newReleaseId(at: Date, commitSha: string): string {
  if (!/^[0-9a-f]{7,40}$/.test(commitSha)) throw new Error(`not a commit sha: "${commitSha}"`);
  const p = (n: number) => String(n).padStart(2, '0');
  const date = `${at.getUTCFullYear()}.${p(at.getUTCMonth() + 1)}.${p(at.getUTCDate())}`;
  const time = `${p(at.getUTCHours())}.${p(at.getUTCMinutes())}.${p(at.getUTCSeconds())}`;
  return `${date}-${time}-${commitSha.slice(0, 7)}`;
}

export function sortReleases(ids: Iterable<string>): string[] {
  return [...ids].filter(isReleaseId).sort();
}

export interface ReleaseState {
  /** Every complete release on the host, any order. */
  releases: string[];
  /** The release `current` points at, if any. */
  live: string | null;
  /** Releases marked bad (failed health check or after-switch hook). */
  bad?: string[];
}

export type RollbackRequest = { kind: 'previous' } | { kind: 'current' } | { kind: 'release'; id: string };

export class RollbackRefused extends SlipwayError {}

export function parseRollbackArg(arg: string | undefined): RollbackRequest {
  if (arg === undefined) return { kind: 'previous' };
  if (arg === 'current') return { kind: 'current' };
  return { kind: 'release', id: arg };
}

function listing(ids: string[]): string {
  return ids.length ? ids.join(', ') : '(none)';
}

/** Which release a rollback lands on; throws RollbackRefused (with the reason) when there is none. */
export function selectRollbackTarget(state: ReleaseState, request: RollbackRequest, force = false): string {
  const all = sortReleases(state.releases);
  const bad = new Set(state.bad ?? []);
  const good = all.filter((id) => !bad.has(id));
  if (request.kind === 'previous') {
    if (!state.live || !all.includes(state.live)) {
      throw new RollbackRefused(`no live release to step back from; releases: ${listing(all)}`);
    }
    const older = good.filter((id) => id < state.live!);
    if (!older.length)
      throw new RollbackRefused(`already at the oldest release (${state.live}); nothing to roll back to`);
    return older[older.length - 1];
  }
  if (request.kind === 'current') {
    const newest = force ? all[all.length - 1] : good[good.length - 1];
    if (!newest) throw new RollbackRefused(`no release to return to; releases: ${listing(all)}`);
    return newest;
  }
  if (!isReleaseId(request.id) || !all.includes(request.id)) {
    const what = isReleaseId(request.id) ? 'no release' : 'not a release id:';
    throw new RollbackRefused(`${what} "${request.id}"; releases: ${listing(all)}`);
  }
  if (bad.has(request.id) && !force) {
    throw new RollbackRefused(`release ${request.id} is marked bad; use --force to roll back to it anyway`);
  }
  return request.id;
}

export interface PurgeInput extends ReleaseState {
  keep: number;
  /** Releases that must survive whatever their age (e.g. a running program's cwd). */
  inUse?: string[];
}

/**
 * Releases purge removes: bad ones first and never counted, then all but the newest `keep` good ones; never the
 * live one.
 */
export function selectPurge({ releases, live, bad = [], keep, inUse = [] }: PurgeInput): string[] {
  if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`keepReleases must be an integer ≥ 1, got ${keep}`);
  const protectedIds = new Set([...(live ? [live] : []), ...inUse]);
  const badSet = new Set(bad);
  const all = sortReleases(releases);
  const good = all.filter((id) => !badSet.has(id));
  const kept = new Set(good.slice(-keep));
  return all.filter((id) => !kept.has(id) && !protectedIds.has(id));
}

export function environmentKey(type: DependencyType, lockfile: string, state: HostState): string | null {
  if (type === 'none') return null;
  const runtime = type === 'node' ? state.runtime.node : state.runtime.python;
  const hash = createHash('sha256').update([type, lockfile, runtime, state.runtime.platform].join('\0')).digest('hex');
  return `${type}-${hash.slice(0, 16)}`;
}

export interface PurgePlan {
  releases: string[];
  envs: string[];
}

/** Pure: what purge removes from a host in this state. */
export function planPurge(state: HostState, keep: number): PurgePlan {
  const releases = selectPurge({ releases: state.releases, live: state.live, bad: badReleases(state), keep });
  const kept = state.releases.filter((id) => !releases.includes(id));
  const keys = kept.map((id) => state.meta[id]?.envKey);
  // A kept release without metadata might use any environment: then keep them all.
  const envs = keys.some((k) => k === undefined) ? [] : state.envs.filter((key) => !keys.includes(key));
  return { releases, envs };
}

/**
 * A new id for this commit that sorts after every release of this second: if the second already has a release
 * (of any commit), wait for the next one. Ids order releases by time (rollback's "one back", purge's "oldest"),
 * and within one second they would sort by commit hash instead.
 */
export async function chooseReleaseId(
  commit: string,
  taken: Set<string>,
  now: () => Date = () => new Date(),
): Promise<string> {
  for (;;) {
    const at = now();
    const id = newReleaseId(at, commit);
    const second = id.slice(0, id.lastIndexOf('-'));
    if (![...taken].some((t) => t.startsWith(`${second}-`))) return id;
    await new Promise((resolve) => setTimeout(resolve, 1000 - at.getUTCMilliseconds() + 5));
  }
}
