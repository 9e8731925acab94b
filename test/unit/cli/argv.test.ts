// The command line parser (tasks/cli/argv.ts): task calls, options, and the errors that name what is wrong.
import { describe, expect, it } from 'vitest';
import { parseCommandLine, parseTaskCall } from '../../../tasks/cli/argv.js';
import { UsageError } from '../../../tasks/lib/errors.js';

/** The UsageError thrown, or fails the test. */
function usageError(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).exitCode).toBe(2);
    return error as UsageError;
  }
  throw new Error('expected a UsageError');
}

describe('parseTaskCall', () => {
  it("reads Fabric's task:arg,arg", () => {
    expect(parseTaskCall('deploy')).toEqual({ name: 'deploy', args: [] });
    expect(parseTaskCall('rollback:current')).toEqual({ name: 'rollback', args: ['current'] });
    expect(parseTaskCall('my-task2:a,b,c')).toEqual({ name: 'my-task2', args: ['a', 'b', 'c'] });
    expect(parseTaskCall('rollback:2026.01.01-00.00.01-aaaaaaa')).toEqual({
      name: 'rollback',
      args: ['2026.01.01-00.00.01-aaaaaaa'],
    });
  });
  it('passes argument text through unchanged (checked by the task, never by a shell)', () => {
    expect(parseTaskCall('rollback:../../etc')).toEqual({ name: 'rollback', args: ['../../etc'] });
    expect(parseTaskCall('rollback:$(touch /tmp/x)')).toEqual({ name: 'rollback', args: ['$(touch /tmp/x)'] });
    expect(parseTaskCall('t:a:b')).toEqual({ name: 't', args: ['a:b'] });
  });
  it('an empty argument is a usage error naming the task', () => {
    for (const word of ['rollback:', 'rollback:a,', 'rollback:,a', 'x:a,,b'])
      expect(usageError(() => parseTaskCall(word)).message).toMatch(
        /empty argument in ".*"; expected \w+:ARG\[,ARG\.\.\.\]/,
      );
  });
  it('a bad task name is a usage error quoting it', () => {
    for (const word of ['Deploy', '9lives', '-deploy', 'de_ploy', 'deploy!', '', ':x', '$(id)', 'a b']) {
      expect(usageError(() => parseTaskCall(word)).message).toContain(`bad task name "${word.split(':')[0]}"`);
    }
  });
});

describe('parseCommandLine', () => {
  it('parses options and several task calls in order', () => {
    const { options, calls } = parseCommandLine([
      '--env',
      'prod',
      '--hosts',
      'a, b',
      '--roles',
      'web',
      '--rolling',
      '2',
      '--dry-run',
      '--json',
      'deploy',
      'rollback:current',
    ]);
    expect(options).toMatchObject({
      env: 'prod',
      hosts: ['a', 'b'],
      roles: ['web'],
      rolling: 2,
      dryRun: true,
      json: true,
      force: false,
      keepFailed: false,
      autoRollback: true,
    });
    expect(calls).toEqual([
      { name: 'deploy', args: [] },
      { name: 'rollback', args: ['current'] },
    ]);
  });
  it('defaults: nothing set, auto-rollback on', () => {
    const { options, calls } = parseCommandLine([]);
    expect(calls).toEqual([]);
    expect(options).toMatchObject({
      env: undefined,
      config: undefined,
      ref: undefined,
      hosts: undefined,
      rolling: undefined,
      dryRun: false,
      json: false,
      help: false,
      autoRollback: true,
    });
  });
  it('options may come after the tasks; --no-auto-rollback, --force, --keep-failed, -h', () => {
    const { options, calls } = parseCommandLine([
      'deploy',
      '--ref',
      'v1.2',
      '--no-auto-rollback',
      '--force',
      '--keep-failed',
      '-h',
      '--config',
      'x.json',
    ]);
    expect(calls.map((c) => c.name)).toEqual(['deploy']);
    expect(options).toMatchObject({
      ref: 'v1.2',
      autoRollback: false,
      force: true,
      keepFailed: true,
      help: true,
      config: 'x.json',
    });
  });
  it('an unknown option is a UsageError (exit 2) naming it', () => {
    expect(usageError(() => parseCommandLine(['--frobnicate', 'deploy'])).message).toContain(
      "Unknown option '--frobnicate'",
    );
    expect(usageError(() => parseCommandLine(['-x', 'deploy'])).message).toContain("Unknown option '-x'");
  });
  it('an option missing its value, or given an empty one, is a usage error', () => {
    usageError(() => parseCommandLine(['deploy', '--env']));
    for (const key of ['env', 'config', 'ref'])
      expect(usageError(() => parseCommandLine([`--${key}`, ' ', 'deploy'])).message).toBe(`--${key} needs a value`);
    expect(usageError(() => parseCommandLine(['--hosts', 'a,,b'])).message).toContain('--hosts: empty name in "a,,b"');
    expect(usageError(() => parseCommandLine(['--roles', ','])).message).toContain('--roles: empty name');
  });
  it('--rolling takes a whole number of at least 1', () => {
    expect(parseCommandLine(['--rolling', '1']).options.rolling).toBe(1);
    expect(parseCommandLine(['--rolling=10']).options.rolling).toBe(10);
    expect(usageError(() => parseCommandLine(['--rolling', '-1', 'deploy'])).message).toContain(
      "'--rolling' argument is ambiguous",
    );
    for (const bad of ['0', '-1', '1.5', 'x', '', 'Infinity', 'NaN']) {
      expect(usageError(() => parseCommandLine([`--rolling=${bad}`, 'deploy'])).message).toBe(
        `--rolling: expected a whole number ≥ 1, got "${bad}"`,
      );
    }
  });
  it('a bad task word is a usage error too', () => {
    usageError(() => parseCommandLine(['deploy', 'Rollback']));
    usageError(() => parseCommandLine(['rollback:']));
  });
});

describe('--rolling accepts only plain whole numbers', () => {
  it('refuses hex and exponent forms that Number() would take', () => {
    for (const bad of ['0x2', '1e1', '2.0', ' 3'])
      expect(() => parseCommandLine(['--rolling', bad, 'deploy'])).toThrow(/--rolling: expected a whole number/);
    expect(parseCommandLine(['--rolling', '3', 'deploy']).options.rolling).toBe(3);
  });
});

describe('`--` COMMAND and --follow', () => {
  it('the words after `--` are the command, each kept whole, even when they look like options or tasks', () => {
    const { options, calls } = parseCommandLine([
      'ssh:web1',
      '--json',
      '--',
      'ls',
      '-la',
      'my file',
      '--env',
      'deploy',
    ]);
    expect(calls).toEqual([{ name: 'ssh', args: ['web1'] }]);
    expect(options.json).toBe(true);
    expect(options.env).toBeUndefined();
    expect(options.command).toEqual(['ls', '-la', 'my file', '--env', 'deploy']);
    expect(parseCommandLine(['ssh']).options.command).toBeUndefined();
  });

  it('`--` with nothing after it is a usage error', () => {
    expect(usageError(() => parseCommandLine(['ssh', '--'])).message).toContain('`--` needs a command after it');
  });

  it('--follow is a flag', () => {
    expect(parseCommandLine(['logs', '--follow']).options.follow).toBe(true);
    expect(parseCommandLine(['logs']).options.follow).toBe(false);
  });

  it('--waves takes cumulative host counts and percentages; not together with --rolling; -v is --verbose', () => {
    expect(parseCommandLine(['deploy', '--waves', '1,10%,25%,100%']).options.waves).toEqual([1, '10%', '25%', '100%']);
    expect(parseCommandLine(['deploy']).options.waves).toBeUndefined();
    expect(usageError(() => parseCommandLine(['deploy', '--waves', '1,0%'])).message).toContain('--waves: "0%" is not');
    expect(usageError(() => parseCommandLine(['deploy', '--waves', '1', '--rolling', '2'])).message).toContain(
      '--rolling and --waves: give one',
    );
    expect(parseCommandLine(['deploy', '-v']).options.verbose).toBe(true);
    expect(parseCommandLine(['deploy']).options.verbose).toBe(false);
  });
});

describe('--artifact', () => {
  it('takes an id or latest; empty is a usage error', () => {
    expect(parseCommandLine(['--artifact', 'latest', 'deploy']).options.artifact).toBe('latest');
    expect(parseCommandLine(['deploy']).options.artifact).toBeUndefined();
    expect(usageError(() => parseCommandLine(['--artifact', ' ', 'deploy'])).message).toBe('--artifact needs a value');
  });
});
