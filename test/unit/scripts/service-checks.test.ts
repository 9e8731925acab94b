// check's service verdicts (tasks/scripts/service-checks.ts): a failed probe is never a ✓.
import { describe, expect, it } from 'vitest';
import type { Services } from '../../../tasks/config/types.js';
import { serviceCheckScript, serviceVerdicts } from '../../../tasks/scripts/service-checks.js';
import { privilegedCommands } from '../../../tasks/scripts/services.js';
import { SERVICES } from '../../helpers/unit.js';

const services = SERVICES;
const root = '/srv/hello';
const releaseId = '2026.01.01-00.00.00-abc1234';

describe('serviceVerdicts', () => {
  const verdicts = (output: string, writable = true, s: Services = services) =>
    serviceVerdicts({ services: s, application: 'hello', root, writable, releaseId, output });
  const allowed = privilegedCommands(services, root, releaseId)
    .map((_, i) => `@@check 0 sudo ${i}\n@@| /usr/bin/x`)
    .join('\n');

  it('all probes passing (supervisorctl status 3: a program not running): every verdict ok', () => {
    const found = verdicts(`@@user deploy\n${allowed}\n@@check 0 nginx\n@@check 3 supervisor\n@@| hello STOPPED`);
    expect(found.map((v) => [v.name, v.ok])).toEqual([
      ['deploy root', true],
      ['sudo rules (sudo -n)', true],
      ['nginx -t', true],
      ['supervisorctl status', true],
    ]);
  });

  it(
    'a deploy root not writable, a missing probe, a refused sudo rule, ' +
      'nginx and supervisorctl failing: each ✗ with a fix',
    () => {
      const found = verdicts(
        '@@user deploy\n@@check 1 sudo 0\n@@| sudo: a password is required\n@@check 1 nginx\n' +
          '@@| nginx: [emerg] unknown directive "x"\n@@check 4 supervisor\n@@| unix:///x.sock no such file',
        false,
      );
      expect(found.every((v) => v.ok === false && v.fix)).toBe(true);
      expect(found[0].detail).toBe('/srv/hello NOT writable by deploy');
      expect(found[1].detail).toMatch(
        /^refuse \d+ of \d+ commands a deploy runs, e\.g\. cp -P .*: sudo: a password is required$/,
      );
    },
  );

  it('sudo missing on the host: the fix says to install it', () => {
    const found = verdicts('@@user deploy\n@@check 127 sudo 0\n@@| bash: line 1: sudo: command not found');
    expect(found[1].fix).toMatch(/^install sudo on the host/);
  });

  it("without services.sudo: probes the config files' folders instead of sudo rules", () => {
    const s = { ...services, sudo: '' };
    expect(serviceCheckScript(s, root, releaseId).text).not.toContain(' -l ');
    expect(
      verdicts('@@user deploy\n@@check 1 configs\n@@| not writable: /etc/nginx/sites-available/hello.conf', true, s)[1],
    ).toMatchObject({
      name: 'config files',
      ok: false,
    });
  });
});
