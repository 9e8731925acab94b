// The logs task's pure parts (tasks/builtin/logs.ts): its argument, where the logs are, and tail's output split
// into lines by log.
import { describe, expect, it } from 'vitest';
import { checkLogsArgs, LogLines, logDir } from '../../../tasks/builtin/logs.js';
import type { ResolvedConfig } from '../../../tasks/config/types.js';
import { UsageError } from '../../../tasks/lib/errors.js';

const files = { out: '/srv/a/shared/logs/a.out.log', err: '/srv/a/shared/logs/a.err.log' };

function parse(chunks: string[]): string[] {
  const seen: string[] = [];
  const parser = new LogLines(files, (stream, line) => seen.push(`${stream}|${line}`));
  for (const c of chunks) parser.push(Buffer.from(c));
  parser.end();
  return seen;
}

describe('LogLines', () => {
  it("labels each line by tail's headers and drops tail's own blank line before a header", () => {
    const text = `==> ${files.out} <==\no1\n\no3\n\n==> ${files.err} <==\ne1\n`;
    expect(parse([text])).toEqual(['out|o1', 'out|', 'out|o3', 'err|e1']);
  });

  it('joins lines and UTF-8 characters split across chunks; a last line without newline is kept', () => {
    const text = Buffer.from(`==> ${files.err} <==\nnaïve\nend`);
    const at = text.indexOf(0xc3) + 1; // inside the two bytes of "ï"
    const seen: string[] = [];
    const parser = new LogLines(files, (stream, line) => seen.push(`${stream}|${line}`));
    parser.push(text.subarray(0, at));
    parser.push(text.subarray(at));
    parser.end();
    expect(seen).toEqual(['err|naïve', 'err|end']);
  });

  it("prints nothing before the first header (the script's @@no-logs), and a header of another file is a line", () => {
    expect(parse(['@@no-logs\n'])).toEqual([]);
    expect(parse([`==> ${files.out} <==\n==> /etc/passwd <==\n`])).toEqual(['out|==> /etc/passwd <==']);
  });
});

describe('checkLogsArgs and logDir', () => {
  it('takes one number of lines, 1–100000', () => {
    expect(() => checkLogsArgs([])).not.toThrow();
    expect(() => checkLogsArgs(['200'])).not.toThrow();
    for (const bad of [['0'], ['-1'], ['x'], ['100001'], ['1', '2']])
      expect(() => checkLogsArgs(bad)).toThrow(UsageError);
  });

  it('vars.logDir, else shared/logs, as the default supervisor template writes them', () => {
    const config = (vars: Record<string, string>) => ({ vars }) as unknown as ResolvedConfig;
    expect(logDir(config({}), '/srv/a/shared')).toBe('/srv/a/shared/logs');
    expect(logDir(config({ logDir: '/var/log/a' }), '/srv/a/shared')).toBe('/var/log/a');
  });
});
