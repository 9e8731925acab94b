// Task `logs[:lines]`: the program's stdout and stderr logs on each host, each line after its host; --follow streams.
import type { ResolvedConfig } from '../config/types.js';
import type { TaskRun } from '../fleet/task-run.js';
import { CommandFailed } from '../hosts/host.js';
import { UsageError } from '../lib/errors.js';
import { hostOutput, lineWriter } from '../lib/log.js';
import { logFiles, logsScript } from '../scripts/everyday.js';

const DEFAULT_LINES = 50;
const MAX_LINES = 100_000;

/** logs takes at most one argument: how many lines of each log to show first. */
export function checkLogsArgs(args: string[], _config?: ResolvedConfig): void {
  if (args.length > 1) throw new UsageError(`logs takes at most one argument (lines), got ${args.length}: logs:200`);
  if (args.length && !(/^\d+$/.test(args[0]) && Number(args[0]) >= 1 && Number(args[0]) <= MAX_LINES))
    throw new UsageError(`logs: "${args[0]}" is not a number of lines; expected 1–${MAX_LINES}, as in logs:200`);
}

/** Where the program's logs are: `vars.logDir`, else shared/logs (as templates/supervisor.conf.hbs writes them). */
export function logDir(config: ResolvedConfig, shared: string): string {
  return typeof config.vars.logDir === 'string' ? config.vars.logDir : `${shared}/logs`;
}

/**
 * Splits tail's output into lines, each with the log it came from (`out` or `err`, by tail's `==> file <==`
 * headers). The blank line tail prints before a header is its own, not the log's: held back until the next line.
 */
export class LogLines {
  private stream: 'out' | 'err' | undefined;
  private blank = false;
  /** The script found neither log (it printed @@no-logs). */
  noLogs = false;

  constructor(
    private readonly files: { out: string; err: string },
    private readonly emit: (stream: 'out' | 'err', line: string) => void,
  ) {}

  line(line: string): void {
    const header = /^==> (.*) <==$/.exec(line);
    if (header && (header[1] === this.files.out || header[1] === this.files.err)) {
      this.stream = header[1] === this.files.out ? 'out' : 'err';
      this.blank = false;
      return;
    }
    if (!this.stream) {
      this.noLogs ||= line === '@@no-logs';
      return; // before any header: nothing of a log
    }
    if (this.blank) this.emit(this.stream, '');
    this.blank = line === '';
    if (!this.blank) this.emit(this.stream, line);
  }
}

/** The `logs` task: the last lines of each host's program logs; with --follow, then new lines until Ctrl-C. */
export async function logs(run: TaskRun): Promise<void> {
  checkLogsArgs(run.args);
  const lines = run.args.length ? Number(run.args[0]) : DEFAULT_LINES;
  const follow = run.options.follow === true;
  await run.each('logs', async (h) => {
    const files = logFiles(logDir(run.config, h.paths.shared), run.config.application);
    let shown = 0;
    const parser = new LogLines(files, (stream, line) => {
      shown++;
      hostOutput(run.log, h.config.name, `${stream}| ${line}`);
    });
    const result = await h.host.exec(logsScript(files, lines, follow), {
      readonly: true,
      stdout: lineWriter((line) => parser.line(line)),
    });
    // Ctrl-C is how --follow ends: the tail on the host was killed by the interrupt, as asked.
    if (follow && run.interrupted) return `followed until interrupted (${shown} lines)`;
    if (result.code !== 0) throw new CommandFailed(h.config.name, 'reading the logs', result);
    if (parser.noLogs) return `no logs yet: neither ${files.out} nor ${files.err}`;
    return `${shown} lines from ${files.out}, ${files.err}`;
  });
}
