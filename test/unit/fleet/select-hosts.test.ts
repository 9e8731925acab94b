// Which hosts a run acts on (tasks/fleet/select-hosts.ts): --hosts and --roles.
import { describe, expect, it } from 'vitest';
import { selectHosts } from '../../../tasks/fleet/select-hosts.js';

describe('selectHosts', () => {
  const hosts = [
    { name: 'web1', roles: ['web'], deployTo: '/a', host: 'x' },
    { name: 'db1', roles: ['db'], deployTo: '/a', host: 'y' },
  ];
  it('by name and by role; unknown ones are config errors listing what exists', () => {
    expect(selectHosts(hosts).map((h) => h.name)).toEqual(['web1', 'db1']);
    expect(selectHosts(hosts, ['db1']).map((h) => h.name)).toEqual(['db1']);
    expect(selectHosts(hosts, undefined, ['web']).map((h) => h.name)).toEqual(['web1']);
    expect(() => selectHosts(hosts, ['web9'])).toThrow(/--hosts: unknown host "web9"; hosts: web1, db1/);
    expect(() => selectHosts(hosts, undefined, ['cache'])).toThrow(/--roles: no host has role "cache"; roles: web, db/);
  });
});
