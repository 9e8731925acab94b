// The rollout's pure rules: --waves parsed, hosts split into cumulative waves, the failure budget; and the
// rollout config refused at load (exit 2) naming the key and what is valid.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../tasks/config/load.js';
import { failureLimit, parseWaves, splitIntoWaves } from '../../../tasks/config/rollout.js';
import { ConfigError, UsageError } from '../../../tasks/lib/errors.js';
import { scratchDir } from '../../helpers/unit.js';

const hosts = (n: number) => Array.from({ length: n }, (_, i) => `web${i + 1}`);
const sizes = (waves: string[][]) => waves.map((w) => w.length);

describe('waves', () => {
  it('are cumulative: each figure is how many hosts are live after its wave; the rest form a last wave', () => {
    expect(sizes(splitIntoWaves(hosts(30), parseWaves('1,10%,25%,100%')))).toEqual([1, 2, 5, 22]);
    expect(sizes(splitIntoWaves(hosts(100), parseWaves('1,10%,25%,100%')))).toEqual([1, 9, 15, 75]);
    // A list that stops short: the hosts left go last.
    expect(sizes(splitIntoWaves(hosts(10), [1, '50%']))).toEqual([1, 4, 5]);
    // Figures that add nothing add no wave; a percentage rounds up (1% of 30 is one canary).
    expect(sizes(splitIntoWaves(hosts(3), [1, '1%', '10%', 2, 50]))).toEqual([1, 1, 1]);
    expect(splitIntoWaves(hosts(4), ['100%'])).toEqual([hosts(4)]);
    expect(splitIntoWaves(hosts(5), [2, 4]).flat()).toEqual(hosts(5));
  });

  it('--waves refuses a figure that is no host count or percentage, naming it', () => {
    for (const bad of ['0', '1,,2', '10%%', '101%', '0%', 'a', '-1', '1.5']) {
      expect(() => parseWaves(bad), bad).toThrow(UsageError);
    }
    expect(() => parseWaves('1,abc')).toThrow(/--waves: "abc" is not a host count ≥ 1 or a percentage/);
  });

  it('the failure budget is a count, or a percentage of the hosts rounded down', () => {
    expect(failureLimit(undefined, 100)).toBe(0);
    expect(failureLimit(3, 100)).toBe(3);
    expect(failureLimit('7%', 30)).toBe(2);
    expect(failureLimit('10%', 30)).toBe(3);
    expect(failureLimit('0%', 30)).toBe(0);
  });
});

describe('rollout in the config', () => {
  const { freshDir } = scratchDir('rollout');
  const load = async (extra: Record<string, unknown>, env: Record<string, unknown> = {}) => {
    const file = path.join(freshDir(), 'deploy.config.json');
    const hosts = [{ name: 'local', local: true, deployTo: 'deploy' }];
    writeFileSync(file, JSON.stringify({ application: 'hello', ...extra, environments: { local: { hosts, ...env } } }));
    return loadConfig({ configFile: file });
  };
  const refused = async (extra: Record<string, unknown>, env?: Record<string, unknown>) => {
    const error = await load(extra, env).catch((e: Error) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).exitCode).toBe(2);
    return (error as Error).message;
  };
  const check = { url: 'http://127.0.0.1:8080/health' };

  it('is taken from the top level, and an environment replaces it', async () => {
    const rollout = { waves: [1, '10%'], bakeSeconds: 5, maxFailures: '5%' };
    expect((await load({ rollout, healthcheck: check })).rollout).toEqual(rollout);
    expect((await load({ rollout, healthcheck: check }, { rollout: { waves: [2] } })).rollout).toEqual({ waves: [2] });
  });

  it('bad values exit 2 at load, naming the key and what is valid', async () => {
    expect(await refused({ rollout: { waves: [0] } })).toContain(
      'rollout.waves.0: a host count ≥ 1 or a percentage of the hosts from "0.1%" to "100%"',
    );
    expect(await refused({ rollout: { waves: ['150%'] } })).toContain('rollout.waves.0: a host count');
    expect(await refused({ rollout: { waves: [] } })).toContain('rollout.waves: at least one wave');
    expect(await refused({ rollout: { maxFailures: -1 } })).toContain(
      'rollout.maxFailures: a host count ≥ 0 or a percentage of the hosts from "0%" to "100%"',
    );
    expect(await refused({ rollout: { bakeSeconds: -2 } })).toContain('rollout.bakeSeconds');
    expect(await refused({ rollout: { wave: [1] } })).toContain('rollout.wave: unknown key');
    expect(await refused({ rollout: { bakeSeconds: 10 } })).toContain(
      'rollout.bakeSeconds: needs a healthcheck to poll during the bake',
    );
    expect(await refused({}, { rollout: { bakeSeconds: 10 } })).toContain('environments.local.rollout.bakeSeconds');
  });
});
