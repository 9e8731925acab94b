// Human output: one line per step per host with its duration, secrets redacted, colour only on a terminal. On a
// terminal (without --verbose) a step is one progress line instead (done / failed / running, the slowest host),
// and only failed hosts get lines of their own.
import { StringDecoder } from 'node:string_decoder';
import { Writable } from 'node:stream';
import { secrets } from './redact.js';

/** The step under way in compact output. */
interface Progress {
  step: string;
  total: number;
  done: number;
  failed: number;
  started: number;
  /** The slowest host so far: its name, time and detail. */
  slowest?: { host: string; ms: number; detail: string };
  timer: NodeJS.Timeout;
  shown: boolean;
}

export class Log {
  private readonly out: NodeJS.WriteStream;
  private readonly colour: boolean;
  /** A progress line per step instead of a line per host per step: on a terminal, unless --verbose. */
  readonly compact: boolean;
  private width = 0;
  private progress?: Progress;

  /** `secrets` join the process's (redact.ts): redaction covers every output, errors included. */
  constructor(options: { json: boolean; secrets?: Iterable<string>; verbose?: boolean }) {
    secrets.add(options.secrets ?? []);
    this.out = options.json ? process.stderr : process.stdout;
    this.colour = Boolean(this.out.isTTY) && !process.env.NO_COLOR;
    this.compact = Boolean(this.out.isTTY) && !options.verbose;
  }

  /** A step starts on these hosts: in compact output, its progress line (until endStep). */
  beginStep(step: string, hosts: number): void {
    if (!this.compact || this.progress) return;
    const timer = setInterval(() => this.drawProgress(), 250).unref();
    this.progress = { step, total: hosts, done: 0, failed: 0, started: performance.now(), timer, shown: false };
    this.drawProgress();
  }

  /** The step ended: its progress line becomes its summary line. */
  endStep(step: string): void {
    const p = this.progress;
    if (!p || p.step !== step) return;
    clearInterval(p.timer);
    this.clearProgress();
    this.progress = undefined;
    const mark = p.failed ? this.paint(31, '✗') : this.paint(32, '✓');
    const ms = performance.now() - p.started;
    const counts = `${p.done}/${p.total} ok${p.failed ? `, ${p.failed} failed` : ''}`;
    const slowest = p.slowest && p.total > 1 ? `  slowest ${p.slowest.host}` : '';
    const detail = p.slowest?.detail ? `  ${p.slowest.detail}` : '';
    this.line(
      `${mark} ${step.padEnd(22)} ${counts.padEnd(16)}${`${(ms / 1000).toFixed(2)}s`.padStart(7)}${slowest}${detail}`,
    );
  }

  private drawProgress(): void {
    const p = this.progress;
    if (!p) return;
    const running = p.total - p.done - p.failed;
    const elapsed = `${((performance.now() - p.started) / 1000).toFixed(1)}s`;
    const text = `… ${p.step.padEnd(22)} ${p.done} done, ${p.failed} failed, ${running} running  ${elapsed}`;
    this.out.write(`\r\x1b[2K${this.redact(text)}`);
    p.shown = true;
  }

  private clearProgress(): void {
    if (this.progress?.shown) this.out.write('\r\x1b[2K');
    if (this.progress) this.progress.shown = false;
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
    this.clearProgress();
    this.out.write(`${this.redact(text)}\n`);
    if (this.progress) this.drawProgress();
  }

  warn(text: string): void {
    this.line(this.paint(33, `warning: ${text}`));
  }

  error(text: string): void {
    this.clearProgress();
    process.stderr.write(`${this.redact(this.paint(31, `error: ${text}`))}\n`);
    if (this.progress) this.drawProgress();
  }

  /** `web1  upload  0.21s  detail` */
  step(
    host: string,
    step: string,
    ms: number,
    status: 'ok' | 'failed' | 'skipped' | 'dry-run' = 'ok',
    detail = '',
  ): void {
    const p = this.progress;
    if (p && p.step === step) {
      if (status === 'failed') p.failed++;
      else p.done++;
      if (!p.slowest || ms >= p.slowest.ms) p.slowest = { host, ms, detail: status === 'ok' ? detail : '' };
      // A failed host still gets its own line (above the progress line).
      if (status !== 'failed') {
        this.drawProgress();
        return;
      }
    }
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
