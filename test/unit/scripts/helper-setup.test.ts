// The helper's part of setup (tasks/scripts/helper-setup.ts): its config and sudo rule exactly as README shows them.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { helperConfig, helperSudoers } from '../../../tasks/scripts/helper-setup.js';
import { helperSubcommands } from '../../../tasks/scripts/services-helper.js';
import { SERVICES, scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('helper-setup');
const HELPER = '/usr/local/sbin/slipway-services';
const HELPER_DEFAULTS = {
  site: '/etc/nginx/sites-available/hello.conf',
  enabled: '/etc/nginx/sites-enabled/hello.conf',
  nginxTest: '/usr/sbin/nginx -t -q',
  nginxReload: '/usr/sbin/nginx -s reload',
  programFile: '/etc/supervisor/conf.d/hello.conf',
  supervisorctl: '/usr/bin/supervisorctl',
  allowedPaths: ['/var/log/slipway/hello', '/var/log/nginx'],
  stateDir: '/var/lib/slipway/hello',
};

describe("the helper's config and sudo rule", () => {
  it("helperConfig: README's /etc/slipway/<app>.conf, the program's lines only with supervisor", () => {
    const input = { deployUser: 'deploy', deployTo: '/srv/hello', program: 'hello', runAs: 'deploy' };
    expect(helperConfig({ ...input, nginx: true, supervisor: true, helper: HELPER_DEFAULTS })).toBe(
      [
        '# Written by slipway setup: what the install helper may act on, and nothing else.',
        'deploy_user=deploy',
        'deploy_to=/srv/hello',
        'program=hello',
        'run_as=deploy',
        'program_file=/etc/supervisor/conf.d/hello.conf',
        'supervisorctl=/usr/bin/supervisorctl',
        'site=/etc/nginx/sites-available/hello.conf',
        'enabled=/etc/nginx/sites-enabled/hello.conf',
        'nginx_test=/usr/sbin/nginx -t -q',
        'nginx_reload=/usr/sbin/nginx -s reload',
        'allowed_paths=/var/log/slipway/hello /var/log/nginx',
        'state_dir=/var/lib/slipway/hello',
        '',
      ].join('\n'),
    );
    const nginxOnly = helperConfig({ ...input, nginx: true, supervisor: false, helper: HELPER_DEFAULTS });
    expect(nginxOnly).not.toMatch(/^(program|run_as|program_file|supervisorctl)=/m);
  });

  it('helperSudoers: exactly the calls a deploy, status and check make, which visudo accepts', () => {
    const services = { ...SERVICES, helper: { command: HELPER, application: 'hello' } };
    const text = helperSudoers('deploy', HELPER, 'hello', helperSubcommands(services, true));
    expect(text.split('\n')[1]).toBe(
      `deploy ALL=(root) NOPASSWD: ${HELPER} hello install *, ${HELPER} hello restore, ${HELPER} hello commit, ` +
        `${HELPER} hello restart, ${HELPER} hello pid, ${HELPER} hello status, ${HELPER} hello tail, ` +
        `${HELPER} hello slot-start *, ${HELPER} hello slot-stop *, ${HELPER} hello slot-status *, ` +
        `${HELPER} hello slot-tail *, ${HELPER} hello reload, ${HELPER} hello test`,
    );
    const file = path.join(freshDir(), 'rule');
    writeFileSync(file, text, { mode: 0o440 });
    expect(spawnSync('visudo', ['-c', '-q', '-f', file]).status).toBe(0);
    // Without nginx: no reload, no test.
    const noNginx = helperSudoers(
      'deploy',
      HELPER,
      'hello',
      helperSubcommands({ ...services, nginx: undefined }, true),
    );
    expect(noNginx).not.toMatch(/reload|test/);
  });
});
