// The command line parser and the POSIX quoting every shell line goes through.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseCommandLine, parseTaskCall, UsageError } from '../../tasks/core/cli.js';
import { quote, raw, sh } from '../../tasks/core/sh.js';

describe('parseTaskCall', () => {
  it('reads Fabric\'s task:arg,arg', () => {
    expect(parseTaskCall('deploy')).toEqual({ name: 'deploy', args: [] });
    expect(parseTaskCall('rollback:current')).toEqual({ name: 'rollback', args: ['current'] });
    expect(parseTaskCall('task:a,b')).toEqual({ name: 'task', args: ['a', 'b'] });
    expect(parseTaskCall('rollback:../x')).toEqual({ name: 'rollback', args: ['../x'] });
  });
  it('rejects empty arguments and bad names as usage errors', () => {
    expect(() => parseTaskCall('rollback:')).toThrow(/empty argument/);
    expect(() => parseTaskCall('a:x,,y')).toThrow(UsageError);
    expect(() => parseTaskCall('Deploy')).toThrow(/bad task name "Deploy"/);
    expect(() => parseTaskCall('$(id)')).toThrow(UsageError);
  });
});

describe('parseCommandLine', () => {
  it('parses options and several tasks', () => {
    const { options, calls } = parseCommandLine(['--env', 'prod', '--hosts', 'a,b', '--rolling', '2', '--dry-run', 'deploy', 'releases']);
    expect(options).toMatchObject({ env: 'prod', hosts: ['a', 'b'], rolling: 2, dryRun: true, autoRollback: true });
    expect(calls.map((c) => c.name)).toEqual(['deploy', 'releases']);
    expect(parseCommandLine(['--no-auto-rollback', 'deploy']).options.autoRollback).toBe(false);
  });
  it('reports bad options with exit code 2', () => {
    for (const argv of [['--frob'], ['--rolling', '0', 'deploy'], ['--rolling', 'x'], ['--hosts', 'a,,b'], ['--env', '']]) {
      let error: unknown;
      try {
        parseCommandLine(argv);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(UsageError);
      expect((error as UsageError).exitCode).toBe(2);
    }
  });
});

describe('quote and sh', () => {
  const hostile = ["it's", 'say "hi"', '$(touch /tmp/x)', '`id`', 'a;b', 'two\nlines', 'with space', '-rf', 'ünïcödé ☃', '', "'", '\\', '$HOME', '*'];
  it('leaves plain words alone and single-quotes the rest', () => {
    expect(quote('releases/2026.01.01-00.00.01-abc1234')).toBe('releases/2026.01.01-00.00.01-abc1234');
    expect(quote("it's")).toBe(`'it'\\''s'`);
    expect(quote('-rf')).toBe(`'-rf'`);
    expect(quote('')).toBe(`''`);
  });
  it('dash reads every quoted value back literally', () => {
    for (const value of hostile) {
      expect(execFileSync('/bin/sh', ['-c', `printf '%s' ${quote(value)}`], { encoding: 'utf8' })).toBe(value);
    }
  });
  it('sh quotes every interpolation, joins arrays as words, keeps raw fragments', () => {
    expect(sh`rm -rf ${'a b'} ${['x', "y'z"]} ${raw('2>/dev/null')}`.text).toBe(`rm -rf 'a b' x 'y'\\''z' 2>/dev/null`);
    expect(() => sh`echo ${undefined as unknown as string}`).toThrow(/cannot interpolate/);
  });
});
