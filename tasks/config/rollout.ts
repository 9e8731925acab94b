// A rollout's waves and failure budget (pure): `1,10%,25%,100%` parsed, hosts split into waves, failures counted.
import { UsageError } from '../lib/errors.js';

/** A wave's figure: a host count, or a percentage of the run's hosts (`"10%"`). */
export type WaveSize = number | string;

/** What a wave figure may be, for error messages. */
export const WAVE_SIZES = 'a host count ≥ 1 or a percentage of the hosts from "0.1%" to "100%"';

const PERCENT = /^(\d+(?:\.\d+)?)%$/;

/** The percentage a `"10%"` figure stands for, or undefined when it is not one in (0, 100]. */
export function percentOf(size: string, allowZero = false): number | undefined {
  const m = PERCENT.exec(size);
  const p = m ? Number(m[1]) : Number.NaN;
  return p <= 100 && (p > 0 || (allowZero && p === 0)) ? p : undefined;
}

export function isWaveSize(size: unknown): boolean {
  if (typeof size === 'number') return Number.isInteger(size) && size >= 1;
  return typeof size === 'string' && percentOf(size) !== undefined;
}

/** `--waves 1,10%,25%,100%` → [1, '10%', '25%', '100%']; a usage error naming the bad figure. */
export function parseWaves(text: string): WaveSize[] {
  const sizes = text.split(',').map((s): WaveSize => (/^\d+$/.test(s.trim()) ? Number(s.trim()) : s.trim()));
  const bad = sizes.find((s) => !isWaveSize(s));
  if (bad !== undefined) throw new UsageError(`--waves: "${bad}" is not ${WAVE_SIZES}; as in --waves 1,10%,25%,100%`);
  return sizes;
}

/** How many hosts a figure covers out of `total`: a percentage rounds up, so "1%" of 30 hosts is one canary. */
function hostsFor(size: WaveSize, total: number): number {
  if (typeof size === 'number') return Math.min(size, total);
  return Math.min(total, Math.ceil(((percentOf(size) ?? 100) * total) / 100 - 1e-9));
}

/**
 * Splits hosts into waves. The figures are cumulative — each is how many hosts are on the new release once
 * its wave is done ("1,10%,100%": one canary, then up to a tenth of the fleet, then all) — so a figure not
 * above the one before adds no wave, and the hosts left after the last figure form a last wave of their own.
 */
export function splitIntoWaves<T>(hosts: T[], sizes: WaveSize[]): T[][] {
  const waves: T[][] = [];
  let done = 0;
  for (const size of [...sizes, hosts.length]) {
    const upTo = hostsFor(size, hosts.length);
    if (upTo <= done) continue;
    waves.push(hosts.slice(done, upTo));
    done = upTo;
  }
  return waves;
}

/** The failures a rollout tolerates (across all its waves): a count, or a percentage of the hosts, rounded down. */
export function failureLimit(maxFailures: number | string | undefined, total: number): number {
  if (maxFailures === undefined) return 0;
  if (typeof maxFailures === 'number') return maxFailures;
  return Math.floor(((percentOf(maxFailures, true) ?? 0) * total) / 100 + 1e-9);
}
