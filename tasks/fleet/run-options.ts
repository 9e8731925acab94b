// The options a task run is given (from the command line).

export interface CliOptions {
  env?: string;
  config?: string;
  ref?: string;
  hosts?: string[];
  roles?: string[];
  rolling?: number;
  dryRun: boolean;
  json: boolean;
  list: boolean;
  help: boolean;
  force: boolean;
  keepFailed: boolean;
  trustNewHosts: boolean;
  autoRollback: boolean;
}
