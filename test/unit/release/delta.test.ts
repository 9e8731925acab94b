// The delta planner and the manifest text (tasks/release/delta.ts): pure, no host.
import { describe, expect, it } from 'vitest';
import {
  deltaBases,
  deltaSafe,
  hostMode,
  manifestText,
  overlays,
  parseManifestText,
  planDelta,
  releaseManifest,
} from '../../../tasks/release/delta.js';
import type { ManifestFile } from '../../../tasks/release/manifest.js';
import type { HostState } from '../../../tasks/release/state.js';
import { A, B, C, D } from '../../helpers/unit.js';

const file = (p: string, sha: string, mode = '644'): ManifestFile => ({ path: p, mode, sha256: sha.repeat(64) });
const link = (p: string, target: string): ManifestFile => ({ path: p, mode: 'link', link: target });

describe('planDelta', () => {
  const base = [
    file('a.js', 'a'),
    file('b.js', 'b'),
    file('bin/run', 'c', '755'),
    file('gone.txt', 'd'),
    link('l', 'a.js'),
  ];

  it('nothing changed: nothing travels, every base file is linked', () => {
    expect(planDelta(base, base)).toEqual({ send: [], skip: [], changed: 0, added: 0, removed: 0 });
  });

  it('changed, renamed, removed, added, mode-changed files and a moved link', () => {
    const next = [
      file('a.js', 'e'), // content changed
      file('b2.js', 'b'), // b.js renamed
      file('bin/run', 'c', '644'), // mode changed: travels, never chmod-ed through the shared inode
      file('new.txt', 'f'), // added
      link('l', 'b2.js'), // link target changed
    ];
    const plan = planDelta(base, next);
    expect(plan.send.sort()).toEqual(['a.js', 'b2.js', 'bin/run', 'l', 'new.txt']);
    expect(plan.skip.sort()).toEqual(['a.js', 'b.js', 'bin/run', 'gone.txt', 'l']);
    expect(plan).toMatchObject({ changed: 3, added: 2, removed: 2 });
  });

  it('a file that became a link (and back) travels and is not linked from the base', () => {
    const plan = planDelta([file('x', 'a'), link('y', 'x')], [link('x', 'y'), file('y', 'a')]);
    expect(plan.send.sort()).toEqual(['x', 'y']);
    expect(plan.skip.sort()).toEqual(['x', 'y']);
  });
});

describe('manifest text', () => {
  it('sorted by the bytes of the path (as LC_ALL=C sort), tab-separated, and read back the same', () => {
    const files = [
      file('b', '1'),
      file('a/b', '2'),
      file('a.b', '3'),
      file('Z', '4'),
      link('é', 'a.b'),
      file('a', '5'),
    ];
    const text = manifestText(files);
    expect(text.split('\n').map((l) => l.split('\t')[0])).toEqual(['Z', 'a', 'a.b', 'a/b', 'b', 'é', '']);
    expect(text).toContain(`a.b\t644\t${'3'.repeat(64)}\n`);
    expect(text).toContain('é\tlink\ta.b\n');
    expect(manifestText(parseManifestText(text))).toBe(text);
  });

  it("leaves out slipway's overlays and gives each file the mode umask 022 leaves", () => {
    const config = {
      dependencies: { type: 'node' as const },
      shared: { dirs: ['logs', 'logs/x'], files: ['c/f.json'] },
    };
    const skip = overlays(config);
    expect(skip).toEqual(['.slipway', '.env', 'node_modules', 'logs', 'c/f.json']);
    const tree = [
      file('.slipway/dotenv', 'a', '600'),
      file('.env', 'b'),
      file('.envrc', 'c', '664'),
      file('node_modules/x/index.js', 'd'),
      file('logs/.keep', 'e'),
      file('logs2/keep', 'f', '777'),
      file('c/f.json', 'g'),
    ];
    expect(releaseManifest(tree, skip)).toEqual([file('.envrc', 'c', '644'), file('logs2/keep', 'f', '755')]);
    expect(overlays({ dependencies: { type: 'none' }, shared: { dirs: [], files: [] } })).toEqual(['.slipway', '.env']);
    expect(hostMode('4775')).toBe('4755');
  });

  it('a path or link target with a control character or backslash is not delta-safe', () => {
    expect(deltaSafe([file('a b/c.js', 'a'), link('l', '../x y')], ['logs'])).toBe(true);
    for (const bad of ['tab\there', 'new\nline', 'back\\slash', 'del\u007f'])
      expect(deltaSafe([file(bad, 'a')], []), bad).toBe(false);
    expect(deltaSafe([link('l', 'to\nx')], [])).toBe(false);
  });
});

describe('deltaBases', () => {
  const state = (over: Partial<HostState>): HostState => ({
    now: 0,
    live: null,
    releases: [A, B, C, D],
    meta: {},
    envs: [],
    runtime: { node: '', python: '', platform: '' },
    nginx: null,
    writable: true,
    ...over,
  });
  const sha = (c: string) => c.repeat(64);

  it('the live release first, then the newest; only releases with a manifest, never one marked bad', () => {
    const manifests = { [A]: sha('a'), [B]: sha('b'), [D]: sha('d') };
    const meta = { [D]: { id: D, status: 'bad' } } as unknown as HostState['meta'];
    expect(deltaBases(state({ live: B, manifests, meta })).map((b) => b.id)).toEqual([B, A]);
    expect(deltaBases(state({ live: C, manifests })).map((b) => b.id)).toEqual([D, B, A]);
    expect(deltaBases(state({ live: A, manifests })).map((b) => b.sha256)).toEqual([sha('a'), sha('d'), sha('b')]);
  });

  it('no manifests (releases from before delta, or from the artifact store): no base', () => {
    expect(deltaBases(state({ live: B }))).toEqual([]);
  });
});
