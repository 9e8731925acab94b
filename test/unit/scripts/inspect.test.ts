// The host state read (tasks/scripts/inspect.ts): the parser, and the real script run by bash.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectScript, parseInspection } from '../../../tasks/scripts/inspect.js';
import { A, B, C, D, SAMPLE, scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('unit');

describe('parseInspection', () => {
  it('reads what the inspect script prints, ignoring noise, bad names and torn metadata', () => {
    const state = parseInspection(SAMPLE);
    expect(state).toMatchObject({
      now: 1767225600,
      live: C,
      releases: [A, B, C, D],
      envs: ['node-1', 'node-2', 'node-3'],
      nginx: null,
      writable: true,
    });
    expect(state.runtime).toEqual({ node: 'v20.19.0', python: 'Python 3.11.2', platform: 'Linux x86_64' });
    expect(state.meta[A]).toMatchObject({ ref: 'main', status: 'ok', envKey: 'node-1' });
    expect(state.meta[B]).toMatchObject({ status: 'bad', reason: 'health check failed' });
    expect(state.meta[D]).toBeUndefined();
  });
  it('an empty deploy root: nothing live, nothing there, not writable', () => {
    expect(parseInspection('@@now 5\n')).toMatchObject({
      now: 5,
      live: null,
      releases: [],
      envs: [],
      meta: {},
      writable: false,
      nginx: null,
    });
  });
  it('round trip: the real inspect script on a real deploy root, parsed', () => {
    const root = path.join(freshDir(), 'deploy root');
    for (const id of [A, B]) mkdirSync(path.join(root, 'releases', id, '.slipway'), { recursive: true });
    writeFileSync(
      path.join(root, 'releases', A, '.slipway/release.json'),
      `${JSON.stringify({ id: A, status: 'ok', envKey: 'node-9' })}\n`,
    );
    mkdirSync(path.join(root, 'releases', 'junk'));
    // The sha256 of the manifest a release was verified by (a delta's base); a torn one is no manifest.
    writeFileSync(path.join(root, 'releases', A, '.slipway/manifest.sha256'), `${'a'.repeat(64)}\n`);
    writeFileSync(path.join(root, 'releases', B, '.slipway/manifest.sha256'), 'abc');
    mkdirSync(path.join(root, 'envs/node-9'), { recursive: true });
    writeFileSync(path.join(root, 'envs/node-9/.complete'), '');
    mkdirSync(path.join(root, 'envs/node-half'), { recursive: true }); // no .complete: not an environment
    execFileSync('ln', ['-s', `releases/${B}`, path.join(root, 'current')]);
    // The live release's rendered configs, by their sha256: a deploy copies the same ones on the host.
    writeFileSync(path.join(root, 'releases', B, '.slipway/nginx.conf'), 'server {}\n');
    const state = parseInspection(execFileSync('bash', ['-c', inspectScript(root, 'node').text], { encoding: 'utf8' }));
    expect(state).toMatchObject({ live: B, releases: [A, B], envs: ['node-9'], writable: true });
    expect(state.meta[A]).toMatchObject({ envKey: 'node-9' });
    expect(state.manifests).toEqual({ [A]: 'a'.repeat(64) });
    expect(state.rendered).toEqual({ 'nginx.conf': createHash('sha256').update('server {}\n').digest('hex') });
    expect(state.runtime.node).toBe(process.version);
    expect(Math.abs(state.now - Date.now() / 1000)).toBeLessThan(60);
  });
});
