// Shell for a held command riding on the next one (tasks/scripts/held.ts), run by bash.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { sh } from '../../../tasks/lib/sh.js';
import { HELD_SENT, heldThenScript, splitHeldOutput } from '../../../tasks/scripts/held.js';

const run = (text: string) => {
  try {
    return { code: 0, stdout: execFileSync('bash', ['-c', text], { encoding: 'utf8', stdio: 'pipe' }) };
  } catch (error) {
    const e = error as { status: number; stdout: string };
    return { code: e.status, stdout: e.stdout };
  }
};

describe('heldThenScript', () => {
  it('runs the held command, then the marker and the next; the output splits back into the two', () => {
    const result = run(heldThenScript(sh`set -eu; echo switched`, sh`echo purged`).text);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`switched\n${HELD_SENT}\npurged\n`);
    expect(splitHeldOutput(result.stdout)).toEqual({ held: 'switched\n', next: 'purged\n' });
  });

  it('a failing held command ends it with its status: no marker, the next never runs', () => {
    const result = run(heldThenScript(sh`set -eu; false; echo not-here`, sh`echo purged`).text);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(splitHeldOutput(result.stdout).next).toBeNull();
  });

  it("the held command's set -e stays its own: the next runs as it would alone", () => {
    const result = run(heldThenScript(sh`set -eu; true`, sh`false; echo went-on`).text);
    expect(result.stdout).toContain('went-on');
  });
});
