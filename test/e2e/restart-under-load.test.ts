// The restart strategy (today's default: switch, then `supervisorctl restart`) under a constant load through
// real nginx and supervisord: between the old process going and the new one listening, nginx answers 502.
// The load client must record those failures: this is what shows that its "0 failed" for a cutover means
// something (issue 11).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadHandle, startLoad } from '../helpers/load-client.js';
import { makeProject, type Project, releaseIdOf } from '../helpers/project.js';
import { type ServiceStack, startServiceStack } from '../helpers/services.js';

let stack: ServiceStack;
let project: Project;
let load: LoadHandle | undefined;

beforeAll(async () => {
  stack = await startServiceStack();
  project = makeProject({ format: 'json', config: stack.deployConfig() });
});
afterAll(async () => {
  await load?.stop();
  await stack?.stop();
  project?.cleanup();
});

describe('restart strategy under load', () => {
  it('deploys alternating two refs drop requests, and the load client counts them', async () => {
    const refA = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: project.dir, encoding: 'utf8' }).trim();
    const original = readFileSync(path.join(project.dir, 'app/server.js'), 'utf8');
    const refB = project.commit({ 'server.js': `${original}// b\n` }, 'b');

    const first = await project.run(['deploy', '--ref', refA]);
    expect(first.code, first.stderr + first.stdout).toBe(0);
    const releases = [releaseIdOf(first.stdout)];
    expect(await stack.answer(releases[0])).toContain(releases[0]);

    load = startLoad({ url: `http://127.0.0.1:${stack.nginxPort}/`, host: 'localhost', rate: 50 });
    await load.waitFor(releases[0], 5000);
    const deploys: [number, number][] = [];
    for (const ref of [refB, refA, refB]) {
      const started = Date.now();
      const result = await project.run(['deploy', '--ref', ref]);
      deploys.push([started, Date.now()]);
      expect(result.code, result.stderr + result.stdout).toBe(0);
      releases.push(releaseIdOf(result.stdout));
      await load.waitFor(releases[releases.length - 1], 10_000);
    }
    await new Promise((r) => setTimeout(r, 500));
    const summary = await load.stop();
    load = undefined;

    expect(summary.failed.length, 'failed requests under the restart strategy').toBeGreaterThan(0);
    // Only while a deploy ran (a request due before its end may fail up to its 3 s timeout later): a client
    // that failed in steady state would be broken, not sharp.
    for (const f of summary.failed)
      expect(
        deploys.some(([start, end]) => f.at >= start && f.at <= end),
        JSON.stringify(f),
      ).toBe(true);
    expect(summary.failed.every((f) => ['status', 'refused', 'reset', 'timeout'].includes(f.kind))).toBe(true);
    expect(summary.releasesInOrder).toEqual(releases);
    expect(summary.ok + summary.failed.length).toBe(summary.sent);
  });
});
