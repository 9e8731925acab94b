// The upload's stage script, run by a real bash against a temp deploy root (the host side of an upload).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { stageScript } from '../../tasks/scripts/release.js';

let root: string;
beforeEach(() => {
  root = path.join(mkdtempSync(path.join(tmpdir(), 'slipway-stage-')), 'app');
});
afterEach(() => rmSync(path.dirname(root), { recursive: true, force: true }));

const mode = (file: string) => (statSync(file).mode & 0o777).toString(8);

// Issue 9 item 20: the archive carries the environment's .env; while it arrives, no other local user may read it.
it('the archive being received is 0600 in a 0700 tmp/, also in a root whose tmp/ was 0755', async () => {
  const src = path.join(path.dirname(root), 'src');
  mkdirSync(src);
  writeFileSync(path.join(src, 'server.js'), '// app\n');
  const archive = await new Promise<Buffer>((resolve) => {
    const tar = spawn('tar', ['-czf', '-', '-C', src, '.']);
    const parts: Buffer[] = [];
    tar.stdout.on('data', (d: Buffer) => parts.push(d));
    tar.on('close', () => resolve(Buffer.concat(parts)));
  });
  mkdirSync(path.join(root, 'tmp'), { recursive: true, mode: 0o755 });
  const id = '2026.01.01-00.00.00-abc1234';
  const sha256 = createHash('sha256').update(archive).digest('hex');
  const text = stageScript({ deployTo: root, id, sha256, bytes: archive.length, files: [], shared: { files: [], dirs: [] } }).text;
  const bash = spawn('bash', ['-c', text], { stdio: ['pipe', 'inherit', 'inherit'] });
  const done = new Promise<number | null>((resolve) => bash.on('close', resolve));
  // Half the archive, then look at the file while the host is still receiving it.
  bash.stdin.write(archive.subarray(0, archive.length >> 1));
  const receiving = path.join(root, 'tmp', `${id}.tar.gz`);
  for (let i = 0; i < 200 && !existsSync(receiving); i++) await new Promise((r) => setTimeout(r, 10));
  expect(mode(path.join(root, 'tmp'))).toBe('700');
  expect(mode(receiving)).toBe('600');
  bash.stdin.end(archive.subarray(archive.length >> 1));
  expect(await done).toBe(0);
  expect(existsSync(path.join(root, 'tmp', id, 'server.js'))).toBe(true);
});
