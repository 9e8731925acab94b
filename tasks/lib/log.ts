// Human output: one line per step per host with its duration, secrets redacted, colour only on a terminal.
import { StringDecoder } from 'node:string_decoder';
import { Writable } from 'node:stream';
import { secrets } from './redact.js';

export class Log {
  private readonly out: NodeJS.WriteStream;
  private readonly colour: boolean;
  private width = 0;

  /** `secrets` join the process's (redact.ts): redaction covers every output, errors included. */
  constructor(options: { json: boolean; secrets?: Iterable<string> }) {
    secrets.add(options.secrets ?? []);
    this.out = options.json ? process.stderr : process.stdout;
    this.colour = Boolean(this.out.isTTY) && !process.env.NO_COLOR;
  }

  hostWidth(names: string[]): void {
    this.width = Math.max(0, ...names.map((n) => n.length));
  }

  redact(text: string): string {
    return secrets.redact(text);
  }

  private paint(code: number, text: string): string {
    return this.colour ? `\x1b[${code}m${text}\x1b[0m` : text;
  }

  line(text: string): void {
    this.out.write(`${this.redact(text)}\n`);
  }

  warn(text: string): void {
    this.line(this.paint(33, `warning: ${text}`));
  }

  error(text: string): void {
    process.stderr.write(`${this.redact(this.paint(31, `error: ${text}`))}\n`);
  }

  /** `web1  upload  0.21s  detail` */
  step(
    host: string,
    step: string,
    ms: number,
    status: 'ok' | 'failed' | 'skipped' | 'dry-run' = 'ok',
    detail = '',
  ): void {
    const mark =
      status === 'ok' ? this.paint(32, '✓') : status === 'failed' ? this.paint(31, '✗') : this.paint(90, '·');
    const time = `${(ms / 1000).toFixed(2)}s`.padStart(7);
    const label = status === 'ok' ? step : `${step} (${status})`;
    this.line(`${mark} ${host.padEnd(this.width)}  ${label.padEnd(22)}${time}${detail ? `  ${detail}` : ''}`);
  }

  /** `✗ web1  nginx -t  detail` and, under a failure, its `fix:` line (check's verdicts). */
  verdict(host: string, name: string, ok: boolean | 'skipped', detail: string, fix?: string): void {
    const mark = ok === true ? this.paint(32, '✓') : ok === false ? this.paint(31, '✗') : this.paint(90, '·');
    this.line(`${mark} ${host.padEnd(this.width)}  ${name.padEnd(22)}  ${detail}`);
    if (fix) this.line(`  ${' '.repeat(this.width)}  ${' '.repeat(22)}  fix: ${fix}`);
  }

  /** Indented lines (command output, dry-run commands). */
  detail(host: string, text: string): void {
    // Redacted whole first: a multi-line secret spans the lines printed one by one.
    for (const line of this.redact(text).split('\n'))
      this.line(`  ${host.padEnd(this.width)}  ${this.paint(90, line)}`);
  }
}

/** A host's own output (logs, run, notifications): each line after the host's name, not greyed. */
export function hostOutput(log: Log, host: string, text: string): void {
  for (const line of log.redact(text).split('\n')) log.line(`${host} ${line}`);
}

/**
 * A stream for ExecOptions.stdout that hands on each line as it arrives (the last, unterminated one at the end):
 * streamed output is never all kept in memory (`logs --follow` runs until Ctrl-C).
 */
export function lineWriter(onLine: (line: string) => void): Writable {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      const lines = (partial + decoder.write(chunk)).split('\n');
      partial = lines.pop()!;
      for (const line of lines) onLine(line);
      done();
    },
    final(done) {
      const rest = partial + decoder.end();
      if (rest) onLine(rest);
      done();
    },
  });
}

export const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;
