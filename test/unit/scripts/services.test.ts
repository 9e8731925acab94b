// nginx and supervisor scripts (tasks/scripts/services.ts): the privileged commands, the restart, a stale config
// temp file.
import { describe, expect, it, afterEach, vi } from 'vitest';
import type { Services } from '../../../tasks/config/types.js';
import { bakeScript, healthCheckScript } from '../../../tasks/scripts/health.js';
import { slotCheck, startSlotScript, stopSlotScript } from '../../../tasks/scripts/slots.js';
import { moveUpstreamScript } from '../../../tasks/scripts/upstream.js';
import { sh } from '../../../tasks/lib/sh.js';
import {
  installConfigsScript,
  privilegedCommands,
  programPidCommand,
  restartScript,
  restoreConfigsScript,
  commitConfigsScript,
} from '../../../tasks/scripts/services.js';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { runScript, scratchDir, SERVICES, stubCtl } from '../../helpers/unit.js';

const services = SERVICES;
const root = '/srv/hello';
const releaseId = '2026.01.01-00.00.00-abc1234';
const helper: Services = { ...services, helper: { command: '/usr/local/sbin/slipway-services', application: 'hello' } };

/** The commands after the (marked) sudo prefix in these scripts, each once. */
const throughSudo = (scripts: Array<{ text: string }>) =>
  new Set(
    scripts.flatMap((x) =>
      [...x.text.matchAll(/SUDO (.+?)(?=\)| &&| \|\||;| 2>&1| >\/dev\/null|\n|$)/g)].map((m) => m[1]),
    ),
  );

const CHECK = {
  url: 'http://127.0.0.1:8080/health',
  expectStatus: 200,
  timeoutSeconds: 30,
  successes: 2,
  intervalSeconds: 1,
};

/**
 * What blue-green's slot scripts run through the (marked) sudo prefix: start-slot and drain-slot on either slot
 * (the programs file composed, copied in, reread; update, start, stop, status, tail), the bake, the nginx reload
 * move-traffic sends (listen 'port': at every move), the commit and the site's install.
 */
function blueGreenThroughSudo(s: Services): { slots: Set<string>; site: Set<string> } {
  const marked = { ...s, sudo: 'SUDO' };
  const state = { live: null, blue: null, green: null, operation: null };
  const slots = (['blue', 'green'] as const).flatMap((slot) => {
    const other = slot === 'blue' ? 'green' : 'blue';
    const live = { slot: other, release: 'r0', autostart: true } as const;
    const check = slotCheck(CHECK, root, slot);
    return [
      startSlotScript(marked, root, { slot, release: releaseId, live, check, state }),
      stopSlotScript(marked, root, { slot, release: releaseId, live, state }),
      bakeScript(check, marked, 5, slot),
    ];
  });
  const reload = sh`SUDO nginx -s reload`;
  const move = moveUpstreamScript(
    root,
    {
      to: { slot: 'green', port: 8082 },
      back: { slot: 'blue', port: 8081 },
      reload,
      confirm: { url: 'http://localhost/health', serverName: 'localhost', seconds: 5 },
    },
    sh`true`,
  );
  return {
    slots: throughSudo([...slots, move, programPidCommand(marked)!]),
    // (commitConfigsScript defines restore_configs too: what it runs is its commit_configs.)
    site: throughSudo([
      installConfigsScript(marked, root, releaseId),
      restoreConfigsScript(marked, root),
      commitConfigsScript(marked, root),
    ]),
  };
}

/** What the install, restart, restore and purge scripts run after the (marked) sudo prefix, each once. */
function runThroughSudo(s: Services): Set<string> {
  const marked = { ...s, sudo: 'SUDO' };
  const scripts = [
    installConfigsScript(marked, root, releaseId),
    restartScript(marked, root, 'shell'),
    restoreConfigsScript(marked, root),
    healthCheckScript(
      { url: 'http://127.0.0.1:8080/health', expectStatus: 200, timeoutSeconds: 30, successes: 2, intervalSeconds: 1 },
      marked,
    ),
    programPidCommand(marked)!,
  ];
  return new Set(
    scripts.flatMap((x) =>
      [...x.text.matchAll(/SUDO (.+?)(?=\)| &&| \|\||;| 2>&1| >\/dev\/null|\n|$)/g)].map((m) => m[1]),
    ),
  );
}

const { scratch, freshDir } = scratchDir('services');

afterEach(() => vi.restoreAllMocks());

describe('privilegedCommands', () => {
  it(
    'lists exactly the commands the install, restart, restore, ' +
      'health check and purge scripts run through services.sudo',
    () => {
      const run = runThroughSudo(services);
      expect(run.size).toBeGreaterThan(10);
      expect(new Set(privilegedCommands(services, root, releaseId).map((c) => c.text))).toEqual(run);
    },
  );

  it("blue-green: every command its slot scripts run, the site's install, and never the one program's", () => {
    const listed = new Set(privilegedCommands(services, root, releaseId, 'blue-green').map((c) => c.text));
    const { slots, site } = blueGreenThroughSudo(services);
    expect(slots.size).toBeGreaterThan(10);
    for (const command of slots) expect(listed, command).toContain(command);
    // The site's install, validation and restore as with restart; the program file is only ever the slots'.
    const commit = /commit_configs\(\) \{ SUDO (.+?); \}/.exec(
      commitConfigsScript({ ...services, sudo: 'SUDO' }, root).text,
    )![1];
    const program = (c: string) => /\/etc\/supervisor\/|^supervisorctl|program\./.test(c) && c !== commit;
    const siteOnly = [...site].filter((c) => !program(c));
    expect(siteOnly).toContain(commit);
    for (const command of siteOnly) expect(listed, command).toContain(command);
    for (const command of listed) expect(new Set([...slots, ...site]), command).toContain(command);
    expect(listed).toContain('supervisorctl stop hello-green');
    expect(listed).not.toContain('supervisorctl restart hello');
    expect(listed).not.toContain('supervisorctl update hello');
  });

  it(
    'through the helper: exactly the helper calls those scripts ' +
      'make (its one sudo rule), nothing else through sudo',
    () => {
      const run = runThroughSudo(helper);
      expect([...run].every((c) => c.startsWith('/usr/local/sbin/slipway-services hello '))).toBe(true);
      expect(run).toContain(`/usr/local/sbin/slipway-services hello install ${releaseId}`);
      expect(new Set(privilegedCommands(helper, root, releaseId).map((c) => c.text))).toEqual(run);
    },
  );
});

describe('restartScript', () => {
  it('shows the program’s stderr log when supervisor cannot start it', async () => {
    const services = stubCtl(freshDir(), 'hello FATAL Exited too quickly');
    // The stub's `restart` prints nothing and `reread`/`update` succeed: make restart answer like supervisor does.
    writeFileSync(
      services.supervisor!.ctl,
      `#!/bin/sh\n` +
        `case "$1" in restart) echo 'hello: ERROR (spawn error)';; tail) echo 'boom: DATABASE_URL is not set';; esac\n`,
    );
    const result = await runScript(restartScript(services, '/srv/hello', false).text);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('hello: ERROR (spawn error)');
    expect(result.stderr).toContain('boom: DATABASE_URL is not set');
  });
});

describe('installConfigsScript', () => {
  it('a stale <target>.slipway-new (0644) left by a dead run does not make a private config world-readable', () => {
    const root = path.join(scratch, 'services');
    const id = '2026.01.01-00.00.00-abc1234';
    mkdirSync(path.join(root, `releases/${id}/.slipway`), { recursive: true });
    mkdirSync(path.join(root, 'etc'));
    const site = path.join(root, 'etc/site.conf');
    writeFileSync(path.join(root, `releases/${id}/.slipway/nginx.conf`), 'secret site\n', { mode: 0o600 });
    writeFileSync(`${site}.slipway-new`, 'stale\n');
    chmodSync(`${site}.slipway-new`, 0o644);
    const services = {
      sudo: '',
      nginx: { site, enabled: path.join(root, 'etc/enabled.conf'), test: 'true', reload: 'true' },
    };
    const run = spawnSync('bash', ['-c', installConfigsScript(services, root, id).text]);
    expect(run.status, String(run.stderr)).toBe(0);
    expect(readFileSync(site, 'utf8')).toBe('secret site\n');
    expect(statSync(site).mode & 0o777).toBe(0o600);
  });
});
