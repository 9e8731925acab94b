// known_hosts matching (plain, hashed, wildcard, negated, @revoked) and the accept-new policy, with real
// ssh-keygen keys.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  findKnownKeys,
  fingerprint,
  hostKeyAlgorithms,
  knownHostsName,
  verifyHostKey,
} from '../../../tasks/hosts/known-hosts.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slipway-kh-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function newKey(name: string): { line: string; blob: Buffer } {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, name)]);
  const line = readFileSync(path.join(dir, `${name}.pub`), 'utf8').trim();
  return { line, blob: Buffer.from(line.split(' ')[1], 'base64') };
}

const a = newKey('a');
const b = newKey('b');

describe('known_hosts', () => {
  it('names non-22 ports the way OpenSSH does', () => {
    expect(knownHostsName('127.0.0.2', 22)).toBe('127.0.0.2');
    expect(knownHostsName('127.0.0.2', 2222)).toBe('[127.0.0.2]:2222');
  });

  it('finds plain, wildcard and hashed entries, and honours negation', () => {
    const file = path.join(dir, 'kh1');
    writeFileSync(file, `[127.0.0.2]:2222 ${a.line}\n*.example.com,!bad.example.com ${b.line}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('127.0.0.2'); // really hashed
    expect(findKnownKeys(text, '[127.0.0.2]:2222').keys[0].blob.equals(a.blob)).toBe(true);
    const plain = `*.example.com,!bad.example.com ${b.line}\n`;
    expect(findKnownKeys(plain, 'web.example.com').keys).toHaveLength(1);
    expect(findKnownKeys(plain, 'bad.example.com').keys).toHaveLength(0);
  });

  it('accepts the known key, refuses a changed one with its fingerprint, even with --trust-new-hosts', () => {
    const file = path.join(dir, 'kh2');
    writeFileSync(file, `[h]:22 ${a.line}\nh ${a.line}\n`);
    expect(verifyHostKey(file, 'h', a.blob, false)).toEqual({ ok: true });
    const changed = verifyHostKey(file, 'h', b.blob, true);
    expect(changed.ok).toBe(false);
    expect(!changed.ok && changed.reason).toContain('HOST KEY CHANGED');
    expect(!changed.ok && changed.reason).toContain(fingerprint(b.blob));
    expect(readFileSync(file, 'utf8')).not.toContain(b.line.split(' ')[1]);
  });

  it('refuses an unknown key unless trusting new hosts, and then records it', () => {
    const file = path.join(dir, 'kh3');
    writeFileSync(file, '');
    const refused = verifyHostKey(file, '[n]:2200', a.blob, false);
    expect(!refused.ok && refused.reason).toContain('--trust-new-hosts');
    expect(verifyHostKey(file, '[n]:2200', a.blob, true)).toEqual({ ok: true, recorded: true });
    expect(verifyHostKey(file, '[n]:2200', a.blob, false)).toEqual({ ok: true });
  });

  it('refuses a @revoked key', () => {
    const file = path.join(dir, 'kh4');
    writeFileSync(file, `@revoked h ${a.line}\n`);
    expect(verifyHostKey(file, 'h', a.blob, true).ok).toBe(false);
  });

  it('matches ssh-keygen fingerprints and offers only the known key types', () => {
    const printed = execFileSync('ssh-keygen', ['-l', '-f', path.join(dir, 'a.pub')], { encoding: 'utf8' });
    expect(printed).toContain(fingerprint(a.blob));
    expect(hostKeyAlgorithms([{ type: 'ssh-rsa', blob: a.blob }])).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
  });
});
