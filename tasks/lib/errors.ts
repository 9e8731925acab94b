// slipway's error model: every error it raises is a SlipwayError, and its exit code is the CLI's.
// 2: the command line or the config is wrong (nothing was tried); 1: a task failed.

export class SlipwayError extends Error {
  readonly exitCode: 1 | 2 = 1;
}

/** A command line that does not say what to do: an unknown task or option, a bad task argument. */
export class UsageError extends SlipwayError {
  override readonly exitCode = 2;
}

/** A config mistake, found before any host is changed. */
export class ConfigError extends SlipwayError {
  override readonly exitCode = 2;
}

/** The exit code for an error that ends a run: its own, or 1 for one slipway did not expect. */
export function exitCodeOf(error: unknown): 1 | 2 {
  return error instanceof SlipwayError ? error.exitCode : 1;
}
