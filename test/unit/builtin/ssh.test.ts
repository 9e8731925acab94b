// The ssh task's OpenSSH command line (tasks/builtin/ssh.ts): the config's host, port, user, key and known_hosts,
// host keys always checked.
import { homedir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { sshArgv } from '../../../tasks/builtin/ssh.js';

describe('sshArgv', () => {
  it('passes the host entry and known_hosts, with StrictHostKeyChecking=yes', () => {
    const host = { host: '10.0.0.5', port: 2222, user: 'deploy', privateKey: '~/.ssh/deploy key' };
    expect(sshArgv(host, '~/known hosts', false, 'cd x && ls', true)).toEqual([
      '-t',
      '-p',
      '2222',
      '-l',
      'deploy',
      '-i',
      `${homedir()}/.ssh/deploy key`,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      `UserKnownHostsFile="${homedir()}/known hosts"`,
      '-o',
      'StrictHostKeyChecking=yes',
      '--',
      '10.0.0.5',
      'cd x && ls',
    ]);
  });

  it('an ~/.ssh/config alias alone leaves port, user and key to ssh; --trust-new-hosts is accept-new, never no', () => {
    const argv = sshArgv({ host: 'web1' }, undefined, true, 'true', false);
    expect(argv).toEqual(['-T', '-o', 'StrictHostKeyChecking=accept-new', '--', 'web1', 'true']);
    expect(argv.join(' ')).not.toContain('StrictHostKeyChecking=no');
  });
});
