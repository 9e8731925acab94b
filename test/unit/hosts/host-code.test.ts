import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { codeRecordFile, readCodeRecord, writeCodeRecord } from '../../../tasks/hosts/code-record.js';
import {
  CODE_MISSING,
  CODE_MISSING_STATUS,
  callWords,
  hostCall,
  hostCode,
  listedCode,
  sameCode,
} from '../../../tasks/hosts/host-code.js';
import { secrets } from '../../../tasks/lib/redact.js';
import { script, sh } from '../../../tasks/lib/sh.js';
import type { LockOwner } from '../../../tasks/lock/owner.js';
import { acquireScript } from '../../../tasks/lock/remote-lock.js';
import { inspectScript } from '../../../tasks/scripts/inspect.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempRoot = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'slipway-code-'));
  dirs.push(dir);
  return path.join(dir, 'app');
};
/** The command line as sshd runs it: in a POSIX login shell (dash). */
const login = (line: string) => spawnSync('sh', ['-c', line], { encoding: 'utf8' });
const owner: LockOwner = {
  user: 'deploy',
  machine: "it's me",
  pid: 4242,
  task: 'deploy',
  startedAt: '2026-12-01T09:00:00.000Z',
  token: 'a1b2c3d4-0000-4000-8000-000000000001',
} as LockOwner;
/** The lock's round trip with the state read: what a deploy sends first. */
const lockScript = (root: string) => acquireScript(root, owner, '', inspectScript(root, 'none'));
const normal = (out: string, root: string) => out.replaceAll(root, '<root>').replace(/^@@now \d+$/m, '@@now');

describe('code kept on the host', () => {
  it('runs as a call exactly what its text runs: attached the first time (then kept, 0644), called after', () => {
    const byText = tempRoot();
    const text = spawnSync('bash', ['-c', lockScript(byText).text], { encoding: 'utf8' });
    expect(text.status).toBe(0);
    expect(text.stdout).toContain('@@acquired');

    const root = tempRoot();
    const code = hostCode(lockScript(root), root)!;
    expect(code).toBeDefined();
    const first = login(hostCall(code, root, true));
    expect(first.status, first.stderr).toBe(0);
    expect(normal(first.stdout, root)).toBe(normal(text.stdout, byText));
    expect(readFileSync(code.file, 'utf8')).toBe(code.definition);
    expect(statSync(code.file).mode & 0o777).toBe(0o644);
    expect(readdirSync(root).sort()).toEqual(readdirSync(byText).sort().concat('.slipway').sort());

    // The lock taken: the next call finds it held, as the text would.
    const again = login(hostCall(code, root, false));
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^@@held \{"user":"deploy","machine":"it's me"/m);
  });

  it('a file cut short or missing: exit 97 having run nothing (the file removed), so the code is sent again', () => {
    const root = tempRoot();
    const code = hostCode(lockScript(root), root)!;
    expect(login(hostCall(code, root, true)).status).toBe(0);
    rmSync(path.join(root, 'deploy.lock'), { recursive: true });
    writeFileSync(code.file, code.definition.slice(0, code.definition.length / 2));
    const cut = login(hostCall(code, root, false));
    expect(cut.status).toBe(CODE_MISSING_STATUS);
    expect(cut.stderr).toContain(CODE_MISSING);
    expect(readdirSync(root)).not.toContain('deploy.lock');
    const missing = login(hostCall(code, root, false));
    expect(missing.status).toBe(CODE_MISSING_STATUS);
    expect(login(hostCall(code, root, true)).stdout).toContain('@@acquired');
  });

  it("the lock's round trip lists the files with their sha256: a damaged one is not taken for its code", () => {
    const root = tempRoot();
    const code = hostCode(lockScript(root), root)!;
    const first = login(hostCall(code, root, true, true));
    expect(listedCode(first.stderr).held.size).toBe(0);
    rmSync(path.join(root, 'deploy.lock'), { recursive: true });
    const listed = login(hostCall(code, root, false, true));
    const { held, rest } = listedCode(listed.stderr);
    expect(rest).toBe('');
    expect(sameCode(code, held.get(code.hash))).toBe(true);
    writeFileSync(code.file, code.definition.replace('@@acquired', '@@acquirex'));
    const damaged = listedCode(login(hostCall(code, root, false, true)).stderr).held;
    expect(sameCode(code, damaged.get(code.hash))).toBe(false);
  });

  it('only the newest 40 files are kept when code is installed', () => {
    const root = tempRoot();
    const code = hostCode(lockScript(root), root)!;
    login(hostCall(code, root, true));
    const dir = path.dirname(code.file);
    for (let i = 0; i < 45; i++) {
      const old = path.join(dir, `lib-${String(i).padStart(16, '0')}.sh`);
      writeFileSync(old, '_s() { :; }\n');
      execFileSync('touch', ['-d', `2020-01-01 00:00:${String(i).padStart(2, '0')}`, old]);
    }
    rmSync(path.join(root, 'deploy.lock'), { recursive: true });
    rmSync(code.file);
    expect(login(hostCall(code, root, true)).status).toBe(0);
    const left = readdirSync(dir).filter((f) => f.startsWith('lib-'));
    expect(left).toHaveLength(40);
    expect(left).toContain(path.basename(code.file));
    expect(left).not.toContain(`lib-${'0'.repeat(16)}.sh`);
  });

  it('arrays are one value whatever their length: the same code for 0, 1 or 3 words', () => {
    const root = tempRoot();
    const pad = sh`: ${'x'.repeat(400)}`;
    const of = (ids: string[]) => script(pad, sh`for r in ${ids}; do echo "<$r>"; done`, sh`echo ${'id-1'}`);
    const codes = [[], ['r1'], ['r1', "it's 2", 'r 3']].map((ids) => hostCode(of(ids), root)!);
    expect(new Set(codes.map((c) => c.hash)).size).toBe(1);
    for (const code of codes) login(hostCall(code, root, true));
    expect(login(hostCall(codes[2], root, true)).stdout).toBe("<r1>\n<it's 2>\n<r 3>\nid-1\n");
  });

  it('goes as it is where a value is not a word of its own (in quotes, a here-document) or the script is short', () => {
    const root = tempRoot();
    const pad = raw400();
    expect(hostCode(script(pad, sh`echo "id ${'r1'}"`), root)).toBeUndefined();
    expect(hostCode(script(pad, sh`echo 'id '${'r1'}`), root)).toBeDefined();
    expect(hostCode(script(pad, sh`cat <<EOF\n${'r1'}\nEOF`), root)).toBeUndefined();
    expect(hostCode(script(pad, sh`# it's a comment`, sh`echo ${'r1'}`), root)).toBeDefined();
    expect(hostCode(script(pad, sh`x=$(echo "$(echo ${'r1'})")`), root)).toBeDefined();
    expect(hostCode(sh`echo ${'r1'}`, root)).toBeUndefined();
  });
});

describe('what stays in the code', () => {
  it('values without a digit, but never a secret: that one is a value of the call', () => {
    const root = tempRoot();
    const of = (value: string) => hostCode(script(raw400(), sh`echo ${value} ${'id-1'}`), root)!;
    expect(of('a message').definition).toContain("echo 'a message'");
    secrets.add(['hunter-two-secret']);
    const secret = of('hunter-two-secret');
    expect(secret.definition).not.toContain('hunter-two-secret');
    expect(secret.values).toContain('hunter-two-secret');
  });
});

function raw400() {
  return sh`: ${'padding '.repeat(60)}`;
}

describe('callWords', () => {
  it('gives a POSIX shell the same strings, shared prefixes and ids set once as variables', () => {
    const id = '2026.12.01-09.00.00-abc1234';
    const values = [
      `/srv/app/tmp/${id}`,
      `/srv/app/tmp/${id}/.slipway/nginx.conf`,
      `/srv/app/tmp/${id}/.slipway/supervisor.conf`,
      `/srv/app/releases/${id}`,
      `{"id":"${id}","note":"it's"}`,
      '',
      '-n',
      "$HOME * 'quoted'\nline",
    ];
    const { assignments, words } = callWords(values);
    expect(assignments).not.toBe('');
    const plain = values.map((v) => `'${v.replace(/'/g, `'\\''`)}'`).join(' ');
    expect((assignments + words.join(' ')).length).toBeLessThan(plain.length);
    const back = execFileSync('sh', ['-c', `${assignments}printf '%s\\0' ${words.join(' ')}`]).toString();
    expect(back.split('\0').slice(0, -1)).toEqual(values);
  });
});

describe('the record of the code a host held', () => {
  it('is by host, deploy root and host key; read back as written; a cache that cannot be written is no error', () => {
    const dir = path.dirname(tempRoot());
    const file = codeRecordFile('deploy@web1:22', '/srv/app', Buffer.from('key-1'), dir);
    expect(codeRecordFile('deploy@web1:22', '/srv/app', Buffer.from('key-2'), dir)).not.toBe(file);
    expect(codeRecordFile('deploy@web1:22', '/srv/other', Buffer.from('key-1'), dir)).not.toBe(file);
    expect(readCodeRecord(file).size).toBe(0);
    writeCodeRecord(file, ['0123456789abcdef', 'fedcba9876543210']);
    expect([...readCodeRecord(file)].sort()).toEqual(['0123456789abcdef', 'fedcba9876543210']);
    writeFileSync(path.join(dir, 'not-a-dir'), '');
    expect(() => writeCodeRecord(path.join(dir, 'not-a-dir', 'x'), ['0123456789abcdef'])).not.toThrow();
  });
});
