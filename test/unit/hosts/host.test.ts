// A failed command's error (tasks/hosts/host.ts): its tail, secrets redacted.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CommandFailed } from '../../../tasks/hosts/host.js';
import { Log } from '../../../tasks/lib/log.js';

afterEach(() => vi.restoreAllMocks());

const pem = '-----BEGIN PRIVATE KEY-----\nMIIEvQunitPEMline1AAAA\nBBBBunitPEMline2BBBB\n-----END PRIVATE KEY-----';

describe('CommandFailed', () => {
  new Log({ json: false, secrets: [pem] });

  it('redacts before it keeps the last 15 lines, so a cut never shows part of a secret', () => {
    const stderr = `${pem}\n${Array.from({ length: 13 }, (_, i) => `line ${i + 1}`).join('\n')}\n`;
    const error = new CommandFailed('web1', 'hook "x"', { code: 3, stdout: '', stderr });
    expect(error.message).toMatch(/line 13$/);
    expect(error.message).not.toMatch(/unitPEMline|PRIVATE KEY/);
  });
});
