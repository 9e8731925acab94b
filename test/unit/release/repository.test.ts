// Remote repositories (tasks/release/repository.ts, tasks/lib/paths.ts): which values are URLs, where each one's
// mirror lives, and a URL's password kept out of messages.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isRemoteRepository } from '../../../tasks/lib/paths.js';
import { displayUrl, mirrorDir } from '../../../tasks/release/repository.js';

describe('isRemoteRepository', () => {
  it('ssh, https, http, git and file URLs and scp-like user@host:path are remote; paths are not', () => {
    for (const url of [
      'ssh://git@example.com/org/app.git',
      'https://example.com/org/app.git',
      'http://example.com/app',
      'git://example.com/app.git',
      'file:///srv/app.git',
      'git@github.com:org/app.git',
    ])
      expect(isRemoteRepository(url), url).toBe(true);
    for (const local of ['.', '../app', '/srv/app.git', 'app:v2', 'C:/x', 'dir/with@sign:colon/x'])
      expect(isRemoteRepository(local), local).toBe(false);
  });
});

describe('mirrorDir', () => {
  it('is under $XDG_CACHE_HOME/slipway/repositories (else ~/.cache), one folder per URL', () => {
    const a = mirrorDir('ssh://git@example.com/org/app.git', { XDG_CACHE_HOME: '/c' });
    expect(a).toMatch(/^\/c\/slipway\/repositories\/app-[0-9a-f]{12}\.git$/);
    expect(mirrorDir('ssh://git@example.com/other/app.git', { XDG_CACHE_HOME: '/c' })).not.toBe(a);
    expect(mirrorDir('git@h:x/app.git', {})).toMatch(
      new RegExp(`^${path.join(process.env.HOME ?? '', '.cache')}/slipway/repositories/app-`),
    );
    // A relative XDG_CACHE_HOME is ignored, as the spec says.
    expect(mirrorDir('file:///a/b.git', { XDG_CACHE_HOME: 'rel' })).not.toMatch(/^rel/);
  });
});

describe('displayUrl', () => {
  it("hides a URL's password, keeps the rest", () => {
    expect(displayUrl('https://me:t0ken@example.com/app.git')).toBe('https://me:***@example.com/app.git');
    expect(displayUrl('ssh://git@example.com/app.git')).toBe('ssh://git@example.com/app.git');
  });
});
