// The logs task's pure parts (tasks/builtin/logs.ts): its argument, where the logs are, and tail's output split
// into lines by log.
import { describe, expect, it } from 'vitest';
import { checkLogsArgs, LogLines, logDir } from '../../../tasks/builtin/logs.js';
import type { ResolvedConfig } from '../../../tasks/config/types.js';
import { UsageError } from '../../../tasks/lib/errors.js';
import { lineWriter } from '../../../tasks/lib/log.js';

const files = { out: '/srv/a/shared/logs/a.out.log', err: '/srv/a/shared/logs/a.err.log' };

/** The chunks through lineWriter, as a host's streamed stdout is, into LogLines. */
async function parse(chunks: Array<string | Buffer>): Promise<{ seen: string[]; noLogs: boolean }> {
  const seen: string[] = [];
  const parser = new LogLines(files, (stream, line) => seen.push(`${stream}|${line}`));
  const writer = lineWriter((line) => parser.line(line));
  for (const c of chunks) writer.write(c);
  await new Promise((resolve) => writer.end(resolve));
  return { seen, noLogs: parser.noLogs };
}

describe('LogLines', () => {
  it("labels each line by tail's headers and drops tail's own blank line before a header", async () => {
    const text = `==> ${files.out} <==\no1\n\no3\n\n==> ${files.err} <==\ne1\n`;
    expect((await parse([text])).seen).toEqual(['out|o1', 'out|', 'out|o3', 'err|e1']);
  });

  it('joins lines and UTF-8 characters split across chunks; a last line without newline is kept', async () => {
    const text = Buffer.from(`==> ${files.err} <==\nnaïve\nend`);
    const at = text.indexOf(0xc3) + 1; // inside the two bytes of "ï"
    expect((await parse([text.subarray(0, at), text.subarray(at)])).seen).toEqual(['err|naïve', 'err|end']);
  });

  it("prints nothing before the first header (the script's @@no-logs), and a header of another file is a line", async () => {
    expect(await parse(['@@no-logs\n'])).toEqual({ seen: [], noLogs: true });
    const other = await parse([`==> ${files.out} <==\n==> /etc/passwd <==\n`]);
    expect(other).toEqual({ seen: ['out|==> /etc/passwd <=='], noLogs: false });
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
