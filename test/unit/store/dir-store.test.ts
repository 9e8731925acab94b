// The dir store (tasks/store/dir-store.ts) on a temp folder: objects, listing, removal, keys refused.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DirStore } from '../../../tasks/store/dir-store.js';
import { scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('dir-store');

describe('DirStore', () => {
  it('puts, gets, lists (recursively, sorted) and removes objects', async () => {
    const dir = freshDir();
    const store = new DirStore(dir);
    expect(store.description).toBe(`dir ${dir}`);
    await store.putText('app/staging/latest', 'b\n');
    await store.putText('app/staging/b.json', '{}');
    await store.putText('app/production/a.json', '{}');
    expect(await store.getText('app/staging/latest')).toBe('b\n');
    expect(await store.getText('app/staging/none')).toBeUndefined();
    expect(await store.list('app')).toEqual(['app/production/a.json', 'app/staging/b.json', 'app/staging/latest']);
    expect(await store.list('other')).toEqual([]);
    await store.remove('app/staging/b.json');
    expect(await store.list('app/staging')).toEqual(['app/staging/latest']);
    expect(await store.sourceForHost('app/staging/latest')).toEqual({ path: path.join(dir, 'app/staging/latest') });
    // Written under a temporary name and renamed: nothing else is left beside the object.
    expect(readdirSync(path.join(dir, 'app/staging'))).toEqual(['latest']);
  });

  it('refuses a key that would leave the folder', async () => {
    const store = new DirStore(freshDir());
    await expect(store.putText('../escape', 'x')).rejects.toThrow('bad store key "../escape"');
    await expect(store.getText('/etc/passwd')).rejects.toThrow('bad store key');
  });
});
