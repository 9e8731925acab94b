// The fetch script (tasks/scripts/fetch.ts), run for real by bash on a temp deploy root: by path from a folder
// store, and by curl from a URL read on stdin; a wrong checksum or an unreachable store fails after the retries.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { curlConfig, fetchScript } from '../../../tasks/scripts/fetch.js';
import { A, bash, scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('fetch');

function setup(content = 'the artifact bytes') {
  const dir = freshDir();
  const root = path.join(dir, "deploy root's");
  mkdirSync(path.join(root, 'tmp', A), { recursive: true });
  const store = path.join(dir, 'store', `${A}.tar.gz`);
  mkdirSync(path.dirname(store));
  writeFileSync(store, content);
  return { root, store, sha256: createHash('sha256').update(content).digest('hex') };
}

describe('fetchScript', () => {
  it('copies the artifact from a path and checks its sha256', () => {
    const { root, store, sha256 } = setup();
    const result = bash(fetchScript(root, A, 'hello/staging/x.tar.gz', sha256, { path: store }).text);
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(path.join(root, 'tmp', `${A}.tar.gz`), 'utf8')).toBe('the artifact bytes');
  });

  it('refuses an artifact whose sha256 is not the manifest’s, removing what it staged', () => {
    const { root, store } = setup();
    const wrong = '0'.repeat(64);
    const result = bash(fetchScript(root, A, 'hello/staging/x.tar.gz', wrong, { path: store }).text);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `fetching artifact hello/staging/x.tar.gz failed after 3 attempts: artifact hello/staging/x.tar.gz: ` +
        `refused, its sha256 does not match the manifest's ${wrong}`,
    );
    expect(existsSync(path.join(root, 'tmp', A))).toBe(false);
    expect(existsSync(path.join(root, 'tmp', `${A}.tar.gz`))).toBe(false);
  }, 20_000);

  it('reads the URL from stdin (never the command line) and removes that file; an unreachable store fails', () => {
    const { root, sha256 } = setup();
    const url = 'http://127.0.0.1:9/nothing-listens-here?sig=secret';
    const conf = curlConfig(url);
    const text = fetchScript(root, A, 'k.tar.gz', sha256, { curlConfigBytes: Buffer.byteLength(conf) }).text;
    expect(text).not.toContain('secret');
    const result = bash(text, Buffer.from(conf));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/fetching artifact k\.tar\.gz failed after 3 attempts: curl: \(7\)/);
    expect(existsSync(path.join(root, 'tmp', `fetch-${A}.curl`))).toBe(false);
  }, 20_000);

  it("curl's config quotes the URL", () => {
    expect(curlConfig('http://h/a"b\\c')).toBe('url = "http://h/a\\"b\\\\c"\n');
  });
});
