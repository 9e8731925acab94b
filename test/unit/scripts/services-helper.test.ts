// The commands a deploy runs through the root-owned helper, by string: only an application name,
// a fixed subcommand and a release id ever reach the sudo rule.
import { describe, expect, it } from 'vitest';
import type { Services } from '../../../tasks/config/types.js';
import {
  helperCommand,
  helperPrivilegedCommands,
  installThroughHelper,
  restartThroughHelper,
} from '../../../tasks/scripts/services-helper.js';

const helper: Services = {
  sudo: 'sudo -n',
  helper: { command: '/usr/local/sbin/slipway-services', application: 'hello' },
  nginx: { site: '/s', enabled: '/e', test: 'nginx -t', reload: 'nginx -s reload' },
  supervisor: { program: '/p', ctl: 'supervisorctl', name: 'hello' },
};

describe('services through the helper', () => {
  it('each call is sudo, the helper, the application, the subcommand and at most a release id', () => {
    expect(helperCommand(helper, 'install', '2026.01.02-03.04.05-abcdef0').text).toBe(
      'sudo -n /usr/local/sbin/slipway-services hello install 2026.01.02-03.04.05-abcdef0',
    );
    expect(helperCommand(helper, 'restore').text).toBe('sudo -n /usr/local/sbin/slipway-services hello restore');
  });

  it("install passes the helper's @@changed lines on and remembers a changed site for the reload", () => {
    expect(installThroughHelper(helper, '2026.01.02-03.04.05-abcdef0').text).toBe(
      [
        'if ! installed=$(sudo -n /usr/local/sbin/slipway-services hello install 2026.01.02-03.04.05-abcdef0); then',
        '  exit 1',
        'fi',
        `[ -z "$installed" ] || printf '%s\\n' "$installed"`,
        `case "$installed" in *'@@changed nginx'*) nginx_changed=1;; *) nginx_changed=;; esac`,
      ].join('\n'),
    );
    expect(restartThroughHelper(helper, false).text).toBe(
      [
        'set -e',
        'sudo -n /usr/local/sbin/slipway-services hello restart',
        'sudo -n /usr/local/sbin/slipway-services hello commit',
      ].join('\n'),
    );
  });

  it(
    'helperPrivilegedCommands lists what a deploy runs through the helper, ' + 'without the sudo prefix (for sudo -l)',
    () => {
      expect(helperPrivilegedCommands(helper, '2026.01.02-03.04.05-abcdef0').map((c) => c.text)).toEqual(
        ['install 2026.01.02-03.04.05-abcdef0', 'restore', 'commit', 'restart', 'pid', 'status', 'tail', 'reload'].map(
          (c) => `/usr/local/sbin/slipway-services hello ${c}`,
        ),
      );
    },
  );
});
