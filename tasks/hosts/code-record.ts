// The deployer's record of the code each host held at the end of its last run (host-code.ts), so a run's first
// call goes short where the code is there and attached where it is not: neither costs a second round trip. Kept
// under $SLIPWAY_CACHE (else $XDG_CACHE_HOME/slipway, else ~/.cache/slipway)/host-code/, one file per host, deploy
// root and host key. Only a hint: a host that lost its code since answers exit 97 and gets it again.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

/** Hosts remembered (the newest by time written). */
const KEEP = 500;

export function codeRecordDir(env: NodeJS.ProcessEnv = process.env): string {
  const root = env.SLIPWAY_CACHE || path.join(env.XDG_CACHE_HOME || path.join(homedir(), '.cache'), 'slipway');
  return path.join(root, 'host-code');
}

/** Where a host's record lives: by where it is, its deploy root and its host key (a new host is a new record). */
export function codeRecordFile(address: string, deployTo: string, hostKey?: Buffer, dir = codeRecordDir()): string {
  const id = createHash('sha256')
    .update(`${address}\n${deployTo}\n`)
    .update(hostKey ?? '')
    .digest('hex');
  return path.join(dir, id.slice(0, 32));
}

/** The hashes of the code the host held, as last recorded (none when never recorded or unreadable). */
export function readCodeRecord(file: string): Set<string> {
  try {
    return new Set(
      readFileSync(file, 'utf8')
        .split('\n')
        .filter((h) => /^[0-9a-f]{16}$/.test(h)),
    );
  } catch {
    return new Set();
  }
}

/** Records what the host holds now (written aside, then renamed); a failure to write is only a missed hint. */
export function writeCodeRecord(file: string, hashes: Iterable<string>): void {
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, `${[...hashes].join('\n')}\n`);
    renameSync(temp, file);
    const dir = path.dirname(file);
    const kept = readdirSync(dir)
      .filter((f) => /^[0-9a-f]{32}$/.test(f))
      .map((f) => ({ f, at: statSync(path.join(dir, f)).mtimeMs }))
      .sort((a, b) => b.at - a.at);
    for (const { f } of kept.slice(KEEP)) rmSync(path.join(dir, f), { force: true });
  } catch {
    // a read-only or full cache: the next run asks the host, as a first one does
  }
}
