// Shared by the unit tests: a scratch folder removed after the file's tests, bash and sh run for real, a
// release archive, release ids and an inspected host's sample output, a services config and a stub
// supervisorctl.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll } from 'vitest';
import type { Services } from '../../tasks/config/types.js';

/** Release ids, oldest first. */
export const A = '2026.01.01-00.00.01-aaaaaaa';
export const B = '2026.01.02-00.00.01-bbbbbbb';
export const C = '2026.01.03-00.00.01-ccccccc';
export const D = '2026.01.04-00.00.01-ddddddd';

/** What inspectScript prints on a host with releases A–D (B marked bad, C live, D's metadata torn) and some noise. */
export const SAMPLE = [
  'motd: welcome', // a login banner or other noise is ignored
  '@@now 1767225600',
  `@@current releases/${C}/`,
  `@@release ${B}`,
  `@@release ${A}`,
  `@@release ${C}`,
  `@@release ${D}`,
  '@@release not-a-release',
  '@@release ../etc',
  `@@meta ${A} ${JSON.stringify({
    id: A,
    ref: 'main',
    commit: 'a'.repeat(40),
    deployer: 'me@box',
    deployedAt: '2026-01-01T00:00:01Z',
    status: 'ok',
    envKey: 'node-1',
  })}`,
  `@@meta ${B} {"id":"${B}","envKey":"node-2","status":"bad","reason":"health check failed"}`,
  `@@meta ${C} {"id":"${C}","envKey":"node-2","status":"ok"}`,
  `@@meta ${D} {"id":"${D}","envKey":"node-3","sta`, // torn metadata: listed, without details
  '@@env node-1',
  '@@env node-2',
  '@@env node-3',
  '@@node v20.19.0',
  '@@python Python 3.11.2',
  '@@platform Linux x86_64',
  '@@nginx ',
  '@@writable yes',
].join('\n');

/** A temp folder for the calling test file, removed after its tests; call it at the file's top level. */
export function scratchDir(name: string) {
  const scratch = mkdtempSync(path.join(tmpdir(), `slipway-${name}-`));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  let counter = 0;
  /** A fresh directory per call: imported .mjs/.ts configs are cached by URL, so never reuse a path. */
  const freshDir = () => {
    const dir = path.join(scratch, `c${++counter}`);
    mkdirSync(dir);
    return dir;
  };
  return { scratch, freshDir };
}

/** A script run for real by bash (on a temp deploy root whose path may hold a space and a quote). */
export function bash(command: string, input?: Buffer) {
  const result = spawnSync('bash', ['-c', command], { input, encoding: 'buffer' });
  return { code: result.status, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

/** A release archive of these files, made in `dir`, with its sha256. */
export function makeArchive(dir: string, files: Record<string, string>) {
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  const archive = execFileSync('tar', ['-czf', '-', '-C', dir, '.']);
  return { archive, sha256: createHash('sha256').update(archive).digest('hex') };
}

/** The same script run by sh, its exit code and output. */
export async function runScript(text: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)('sh', ['-c', text]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** nginx and supervisor as a server prepared by README's steps would have them, through `sudo -n`. */
export const SERVICES: Services = {
  sudo: 'sudo -n',
  nginx: {
    site: '/etc/nginx/sites-available/hello.conf',
    enabled: '/etc/nginx/sites-enabled/hello.conf',
    test: 'nginx -t',
    reload: 'nginx -s reload',
  },
  supervisor: { program: '/etc/supervisor/conf.d/hello.conf', ctl: 'supervisorctl', name: 'hello' },
};

/**
 * Services whose supervisorctl is a stub made in `dir`: `status` prints `line` (with `$n`, a number that grows on
 * each call), `tail` a log line.
 */
export function stubCtl(dir: string, line: string): Services {
  const ctl = path.join(dir, 'supervisorctl');
  const n = path.join(dir, 'n');
  writeFileSync(n, '100');
  writeFileSync(
    ctl,
    `#!/bin/sh\nn=$(cat ${n}); echo $((n + 1)) > ${n}\n` +
      `case "$1" in status) echo "${line}";; tail) echo 'boom: from the log';; esac\n`,
  );
  chmodSync(ctl, 0o755);
  return { sudo: '', supervisor: { program: path.join(dir, 'hello.conf'), ctl, name: 'hello' } };
}
