// The deployer's manifest cache (tasks/release/manifest-cache.ts) on a real folder.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256Text } from '../../../tasks/release/delta.js';
import { loadManifest, manifestCacheDir, saveManifest } from '../../../tasks/release/manifest-cache.js';
import { scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('manifest-cache');

describe('manifest cache', () => {
  it('a saved manifest loads by its sha256; an unknown sha, a malformed one or a changed file gives null', () => {
    const dir = freshDir();
    const text = `a.js\t644\t${'a'.repeat(64)}\n`;
    const sha = saveManifest(text, dir);
    expect(sha).toBe(sha256Text(text));
    expect(loadManifest(sha, dir)).toBe(text);
    expect(loadManifest('b'.repeat(64), dir)).toBeNull();
    expect(loadManifest('../../etc/passwd', dir)).toBeNull();
    writeFileSync(path.join(dir, sha), 'edited');
    expect(loadManifest(sha, dir)).toBeNull();
  });

  it('$SLIPWAY_CACHE, else $XDG_CACHE_HOME/slipway, else ~/.cache/slipway', () => {
    expect(manifestCacheDir({ SLIPWAY_CACHE: '/c', XDG_CACHE_HOME: '/x' })).toBe('/c/manifests');
    expect(manifestCacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/slipway/manifests');
    expect(manifestCacheDir({})).toMatch(/\/\.cache\/slipway\/manifests$/);
  });
});
