// check's service verdicts: the privileged commands it asks sudo about are exactly those the deploy's
// scripts run through services.sudo, and a failed probe is never a ✓.
import { describe, expect, it } from 'vitest';
import type { Services } from '../../tasks/config/types.js';
import { serviceCheckScript, serviceVerdicts } from '../../tasks/scripts/service-checks.js';
import { healthCheckScript } from '../../tasks/scripts/health.js';
import { installConfigsScript, privilegedCommands, programPidCommand, restartScript, restoreConfigsScript } from '../../tasks/scripts/services.js';

const services: Services = {
  sudo: 'sudo -n',
  nginx: { site: '/etc/nginx/sites-available/hello.conf', enabled: '/etc/nginx/sites-enabled/hello.conf', test: 'nginx -t', reload: 'nginx -s reload' },
  supervisor: { program: '/etc/supervisor/conf.d/hello.conf', ctl: 'supervisorctl', name: 'hello' },
};
const root = '/srv/hello';
const releaseId = '2026.01.01-00.00.00-abc1234';
const helper: Services = { ...services, helper: { command: '/usr/local/sbin/slipway-services', application: 'hello' } };

/** What the install, restart, restore and purge scripts run after the (marked) sudo prefix, each once. */
function runThroughSudo(s: Services): Set<string> {
  const marked = { ...s, sudo: 'SUDO' };
  const scripts = [
    installConfigsScript(marked, root, releaseId),
    restartScript(marked, root, 'shell'),
    restoreConfigsScript(marked, root),
    healthCheckScript({ url: 'http://127.0.0.1:8080/health', expectStatus: 200, timeoutSeconds: 30, successes: 2, intervalSeconds: 1 }, marked),
    programPidCommand(marked)!,
  ];
  return new Set(scripts.flatMap((x) => [...x.text.matchAll(/SUDO (.+?)(?=\)| &&| \|\||;| 2>&1| >\/dev\/null|\n|$)/g)].map((m) => m[1])));
}

describe('privilegedCommands', () => {
  it('lists exactly the commands the install, restart, restore, health check and purge scripts run through services.sudo', () => {
    const run = runThroughSudo(services);
    expect(run.size).toBeGreaterThan(10);
    expect(new Set(privilegedCommands(services, root, releaseId).map((c) => c.text))).toEqual(run);
  });

  it('through the helper: exactly the helper calls those scripts make (its one sudo rule), nothing else through sudo', () => {
    const run = runThroughSudo(helper);
    expect([...run].every((c) => c.startsWith('/usr/local/sbin/slipway-services hello '))).toBe(true);
    expect(run).toContain(`/usr/local/sbin/slipway-services hello install ${releaseId}`);
    expect(new Set(privilegedCommands(helper, root, releaseId).map((c) => c.text))).toEqual(run);
  });
});

describe('serviceVerdicts', () => {
  const verdicts = (output: string, writable = true, s: Services = services) =>
    serviceVerdicts({ services: s, application: 'hello', root, writable, releaseId, output });
  const allowed = privilegedCommands(services, root, releaseId).map((_, i) => `@@check 0 sudo ${i}\n@@| /usr/bin/x`).join('\n');

  it('all probes passing (supervisorctl status 3: a program not running): every verdict ok', () => {
    const found = verdicts(`@@user deploy\n${allowed}\n@@check 0 nginx\n@@check 3 supervisor\n@@| hello STOPPED`);
    expect(found.map((v) => [v.name, v.ok])).toEqual([['deploy root', true], ['sudo rules (sudo -n)', true], ['nginx -t', true], ['supervisorctl status', true]]);
  });

  it('a deploy root not writable, a missing probe, a refused sudo rule, nginx and supervisorctl failing: each ✗ with a fix', () => {
    const found = verdicts(
      '@@user deploy\n@@check 1 sudo 0\n@@| sudo: a password is required\n@@check 1 nginx\n@@| nginx: [emerg] unknown directive "x"\n@@check 4 supervisor\n@@| unix:///x.sock no such file',
      false,
    );
    expect(found.every((v) => v.ok === false && v.fix)).toBe(true);
    expect(found[0].detail).toBe('/srv/hello NOT writable by deploy');
    expect(found[1].detail).toMatch(/^refuse \d+ of \d+ commands a deploy runs, e\.g\. cp -P .*: sudo: a password is required$/);
  });

  it('sudo missing on the host: the fix says to install it', () => {
    const found = verdicts('@@user deploy\n@@check 127 sudo 0\n@@| bash: line 1: sudo: command not found');
    expect(found[1].fix).toMatch(/^install sudo on the host/);
  });

  it('without services.sudo: probes the config files\' folders instead of sudo rules', () => {
    const s = { ...services, sudo: '' };
    expect(serviceCheckScript(s, root, releaseId).text).not.toContain(' -l ');
    expect(verdicts('@@user deploy\n@@check 1 configs\n@@| not writable: /etc/nginx/sites-available/hello.conf', true, s)[1]).toMatchObject({
      name: 'config files',
      ok: false,
    });
  });
});
