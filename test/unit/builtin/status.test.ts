// status's facts (tasks/builtin/status.ts): which of them say something is wrong.
import { describe, expect, it } from 'vitest';
import { failedFacts } from '../../../tasks/builtin/status.js';

describe('status facts', () => {
  it('a program not RUNNING, nginx -t failing or a failed health check are failures', () => {
    expect(
      failedFacts({
        supervisor: 'hello RUNNING pid 1, uptime 0:01:00',
        nginx: 'config ok',
        health: 'ok: answered 200',
      }),
    ).toEqual([]);
    const down = { supervisor: 'hello STOPPED Dec 01', nginx: 'config FAILS nginx -t', health: 'FAILED: no answer' };
    expect(failedFacts(down)).toEqual(['supervisor', 'nginx', 'health']);
  });
});
