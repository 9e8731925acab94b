// Benchmark helpers: time a command (wall clock), repeat, and summarise as median and min–max.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface Timed {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

export function timeCommand(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Timed> {
  return new Promise((resolve) => {
    const start = performance.now();
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, NO_COLOR: '1', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ ms: performance.now() - start, code, stdout, stderr }));
  });
}

export async function mustTime(
  label: string,
  command: string,
  args: string[],
  options?: { cwd?: string; env?: NodeJS.ProcessEnv },
): Promise<number> {
  const result = await timeCommand(command, args, options);
  if (result.code !== 0)
    throw new Error(
      `${label} failed (exit ${result.code}):\n${result.stdout.slice(-2000)}\n${result.stderr.slice(-2000)}`,
    );
  return result.ms;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function summary(values: number[]): { median: number; min: number; max: number; text: string } {
  const m = median(values);
  const min = Math.min(...values);
  const max = Math.max(...values);
  return {
    median: m,
    min,
    max,
    text: `${(m / 1000).toFixed(2)} s (${(min / 1000).toFixed(2)}–${(max / 1000).toFixed(2)})`,
  };
}

/**
 * mustTime, and the CPU time (user + system, ms) the command and its children used, as GNU time counts it: a
 * figure a loaded machine changes far less than the wall time. cpu is NaN without /usr/bin/time.
 */
export async function mustTimeCpu(
  label: string,
  command: string,
  args: string[],
  options?: { cwd?: string; env?: NodeJS.ProcessEnv },
): Promise<{ ms: number; cpu: number }> {
  if (!existsSync('/usr/bin/time')) return { ms: await mustTime(label, command, args, options), cpu: Number.NaN };
  const out = path.join(tmpdir(), `slipway-bench-cpu-${process.pid}`);
  const ms = await mustTime(label, '/usr/bin/time', ['-f', '%U %S', '-o', out, command, ...args], options);
  const [user, system] = readFileSync(out, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  rmSync(out, { force: true });
  return { ms, cpu: (user! + system!) * 1000 };
}
