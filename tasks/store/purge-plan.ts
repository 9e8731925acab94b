// Pure: which artifacts a store purge removes from one environment's folder.

export interface ArtifactPurgePlan {
  kept: string[];
  removed: string[];
}

/**
 * Keeps the newest `keep` ids, the one `latest` names, and every id live anywhere; removes the rest, oldest first.
 * Ids sort by time (YYYY.MM.DD-HH.MM.SS-sha).
 */
export function planArtifactPurge(
  ids: string[],
  keep: number,
  latest: string | undefined,
  live: Set<string>,
): ArtifactPurgePlan {
  const sorted = [...ids].sort();
  const newest = new Set(sorted.slice(Math.max(0, sorted.length - keep)));
  const kept = sorted.filter((id) => newest.has(id) || id === latest || live.has(id));
  return { kept, removed: sorted.filter((id) => !kept.includes(id)) };
}
