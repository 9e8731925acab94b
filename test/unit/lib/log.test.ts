// Redaction in the human output (tasks/lib/log.ts): secrets in every form they take.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Log } from '../../../tasks/lib/log.js';

afterEach(() => vi.restoreAllMocks());

const pem = '-----BEGIN PRIVATE KEY-----\nMIIEvQunitPEMline1AAAA\nBBBBunitPEMline2BBBB\n-----END PRIVATE KEY-----';

/** What the log printed, collected from stdout and stderr. */
function printed(fn: () => void): string {
  let text = '';
  const collect = (chunk: unknown) => {
    text += String(chunk);
    return true;
  };
  vi.spyOn(process.stdout, 'write').mockImplementation(collect);
  vi.spyOn(process.stderr, 'write').mockImplementation(collect);
  fn();
  vi.restoreAllMocks();
  return text;
}

describe('Log redaction', () => {
  const log = new Log({ json: false, secrets: ['p@ss/w0rd-unit', 'postgres://app:url-pa55-unit@db/app', pem, 'abc'] });

  it("a secret inside a longer string, URL-encoded, and a URL's password on its own", () => {
    expect(log.redact('url=postgres://app:p@ss/w0rd-unit@db')).toBe('url=postgres://app:***@db');
    expect(log.redact('url=postgres://app:p%40ss%2Fw0rd-unit@db')).toBe('url=postgres://app:***@db');
    expect(log.redact('password=url-pa55-unit')).toBe('password=***');
  });

  it('a multi-line secret whole, each of its lines alone, and its JSON form', () => {
    expect(log.redact(`key=${pem}\nnext`)).toBe('key=***\nnext');
    expect(log.redact('tail: BBBBunitPEMline2BBBB\n-----END PRIVATE KEY-----')).toBe('tail: ***\n***');
    expect(log.redact(`{"key": ${JSON.stringify(pem)}}`)).toBe('{"key": "***"}');
  });

  it('detail() redacts a multi-line secret that spans the lines it prints', () => {
    const text = printed(() => log.detail('web1', `would run:\nkey=${pem}\ndone`));
    expect(text).toContain('key=***');
    expect(text).not.toMatch(/unitPEMline|PRIVATE KEY/);
  });

  it('values under 4 characters are not redacted (they would hide unrelated text)', () => {
    expect(log.redact('abc abcd')).toBe('abc abcd');
  });
});
