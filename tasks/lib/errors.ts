// Errors every layer may raise: a config mistake (exit 2).

export class ConfigError extends Error {
  readonly exitCode = 2;
}
