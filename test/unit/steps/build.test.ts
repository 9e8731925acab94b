// `build`'s header line: where it builds (the build host of artifacts.buildOn, or this machine), for which hosts.
import { describe, expect, it } from 'vitest';
import type { HostConfig, ResolvedConfig } from '../../../tasks/config/types.js';
import { buildRunsOn } from '../../../tasks/steps/build.js';

const host = (name: string, roles: string[]) => ({ name, roles }) as HostConfig;
const webs = [host('web1', ['web']), host('web2', ['web'])];

describe('buildRunsOn', () => {
  it('names the build host of artifacts.buildOn, then the hosts the artifact is for', () => {
    const config = { artifacts: { buildOn: { role: 'build', host: host('build1', ['build']) } } } as ResolvedConfig;
    expect(buildRunsOn(config, webs)).toBe('build1 (build host), for web1, web2');
  });

  it('without a build host: this machine', () => {
    expect(buildRunsOn({} as ResolvedConfig, webs)).toBe('this machine, for web1, web2');
  });
});
