// The switch script (tasks/scripts/switch.ts), run by a real bash on a temp deploy root.
import { existsSync, mkdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { switchScript } from '../../../tasks/scripts/switch.js';
import { A, B, bash, C, scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('unit');

describe('switchScript', () => {
  it('swaps current with one mv -T of a fresh relative link, and logs one line', () => {
    const text = switchScript('/srv/my app', A, 'line one\nline two').text;
    expect(text).toContain(`ln -sfn releases/${A} '/srv/my app/.current.next'`);
    expect(text).toContain(`mv -T '/srv/my app/.current.next' '/srv/my app/current'`);
    expect(text).toContain(`printf '%s\\n' 'line one line two' >> '/srv/my app/revisions.log'`);
    expect(text.indexOf('ln -sfn')).toBeLessThan(text.indexOf('mv -T'));
  });
  it('run for real: current becomes a relative link, revisions.log grows; a missing release changes nothing', () => {
    const root = path.join(freshDir(), 'my root');
    for (const id of [A, B]) mkdirSync(path.join(root, 'releases', id), { recursive: true });
    expect(bash(switchScript(root, A, `deploy ${A}`).text).code).toBe(0);
    expect(bash(switchScript(root, B, `deploy ${B}`).text).code).toBe(0);
    expect(readlinkSync(path.join(root, 'current'))).toBe(`releases/${B}`);
    expect(readFileSync(path.join(root, 'revisions.log'), 'utf8')).toBe(`deploy ${A}\ndeploy ${B}\n`);
    const missing = bash(switchScript(root, C, `deploy ${C}`).text);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`release ${C} is not in ${root}/releases`);
    expect(readlinkSync(path.join(root, 'current'))).toBe(`releases/${B}`);
    expect(readFileSync(path.join(root, 'revisions.log'), 'utf8').split('\n').filter(Boolean)).toHaveLength(2);
    expect(existsSync(path.join(root, '.current.next'))).toBe(false);
  });
});
