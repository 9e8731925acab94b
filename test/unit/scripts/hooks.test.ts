// A hook stage's script (tasks/scripts/hooks.ts).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stageCommand } from '../../../tasks/scripts/hooks.js';
import { bash, scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('unit');

describe('stageCommand (hooks)', () => {
  it('passes the stage env on stdin, never in the script, and the commands see it literally', () => {
    const dir = freshDir();
    const value = `pa55 'word'\n$(touch ${path.join(dir, 'pwned')})`;
    const { script, stdin } = stageCommand(
      { name: 'env', commands: ['printf "%s|%s" "$TOKEN" "$OTHER" > out.txt'], env: { TOKEN: value, OTHER: 'two' } },
      dir,
    );
    expect(script.text).not.toContain('pa55');
    const result = bash(script.text, stdin);
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(path.join(dir, 'out.txt'), 'utf8')).toBe(`${value}|two`);
    expect(existsSync(path.join(dir, 'pwned'))).toBe(false);
  });
});
