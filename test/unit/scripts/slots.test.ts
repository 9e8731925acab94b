// blue-green's slot scripts (tasks/scripts/slots.ts), as text and run for real by bash on a temp deploy root,
// against a stub supervisorctl that logs its calls (supervisord itself: test/e2e/blue-green.test.ts).
import { chmodSync, existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Services } from '../../../tasks/config/types.js';
import { raw } from '../../../tasks/lib/sh.js';
import type { SlotState } from '../../../tasks/release/state.js';
import {
  backIfLiveScript,
  moveTrafficScript,
  slotCheck,
  startSlotScript,
  stopSlotScript,
  unlessLiveScript,
  writeSlotStateScript,
} from '../../../tasks/scripts/slots.js';
import { A, B, bash, scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('slots');

const CHECK = {
  url: 'http://127.0.0.1:8080/health?deep=1',
  expectStatus: 200,
  timeoutSeconds: 1,
  successes: 1,
  intervalSeconds: 1,
};

/** A deploy root with releases A and B (each rendering both slots' sections) and a logging supervisorctl. */
function setUp() {
  const dir = freshDir();
  const root = path.join(dir, "my 'root");
  for (const id of [A, B]) {
    mkdirSync(path.join(root, 'releases', id, '.slipway'), { recursive: true });
    for (const slot of ['blue', 'green'])
      writeFileSync(
        path.join(root, 'releases', id, '.slipway', `supervisor.${slot}.conf`),
        `[program:hello-${slot}]\ndirectory=${root}/releases/${id}\nautostart=true\n`,
      );
  }
  const calls = path.join(dir, 'calls');
  const ctl = path.join(dir, 'supervisorctl');
  writeFileSync(
    ctl,
    `#!/bin/sh\necho "$*" >> '${calls}'\ncase "$1" in update) echo "$2: updated process group";; ` +
      `status) echo "$2 RUNNING pid 42, uptime 0:00:03";; esac\n`,
  );
  chmodSync(ctl, 0o755);
  const services: Services = { sudo: '', supervisor: { program: path.join(dir, 'programs.conf'), ctl, name: 'hello' } };
  const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '');
  return {
    root,
    services,
    calls: () => read(calls).trim().split('\n').filter(Boolean),
    programs: () => read(services.supervisor!.program),
  };
}

const state = (s: Partial<SlotState>): SlotState => ({ live: null, blue: null, green: null, operation: null, ...s });

describe('slotCheck', () => {
  it("checks healthcheck.url's path and query on the slot's own socket", () => {
    expect(slotCheck(CHECK, '/srv/app', 'green')).toMatchObject({
      url: 'http://localhost/health?deep=1',
      socket: '/srv/app/run/green.sock',
    });
  });
});

describe('startSlotScript', () => {
  it('composes both sections (autostart on both while both run), updates only the new slot, records state', () => {
    const t = setUp();
    // The health check GETs through a socket nothing listens on: the script fails at the check, after the start.
    const command = startSlotScript(t.services, t.root, {
      slot: 'green',
      release: B,
      live: { slot: 'blue', release: A, autostart: true },
      check: slotCheck(CHECK, t.root, 'green'),
      state: state({ live: 'blue', blue: A, green: B }),
    });
    const result = bash(command.text);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/health check failed after 1s: http:\/\/localhost\/health\?deep=1 answered nothing/);
    expect(t.calls()).toEqual(['reread', 'update hello-green', 'status hello-green', 'tail hello-green stderr']);
    expect(t.programs()).toBe(
      `[program:hello-green]\ndirectory=${t.root}/releases/${B}\nautostart=true\n\n` +
        `[program:hello-blue]\ndirectory=${t.root}/releases/${A}\nautostart=true\n`,
    );
    expect(JSON.parse(readFileSync(path.join(t.root, 'run/state.json'), 'utf8'))).toEqual(
      state({ live: 'blue', blue: A, green: B }),
    );
    // Private while composed and once installed: a section may hold a value from .env.
    expect(existsSync(path.join(t.root, 'run/.programs.next'))).toBe(false);
  });

  it('a release without the slot’s rendered section: refused naming it, nothing started', () => {
    const t = setUp();
    const command = startSlotScript(t.services, t.root, {
      slot: 'blue',
      release: '2026.01.09-00.00.01-eeeeeee',
      live: null,
      check: CHECK,
      state: state({}),
    });
    const result = bash(command.text);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('has no .slipway/supervisor.blue.conf');
    expect(t.calls()).toEqual([]);
  });
});

describe('moveTrafficScript / unlessLiveScript', () => {
  it('swaps live.sock by renaming a fresh relative link over it; unlessLive sees where traffic goes', () => {
    const t = setUp();
    mkdirSync(path.join(t.root, 'run'));
    expect(bash(moveTrafficScript(t.root, 'blue', state({ live: 'blue', blue: A }), undefined).text).code).toBe(0);
    expect(readlinkSync(path.join(t.root, 'run/live.sock'))).toBe('blue.sock');
    expect(
      bash(moveTrafficScript(t.root, 'green', state({ live: 'green', blue: A, green: B }), undefined).text).code,
    ).toBe(0);
    expect(readlinkSync(path.join(t.root, 'run/live.sock'))).toBe('green.sock');
    expect(existsSync(path.join(t.root, 'run/.live.sock.next'))).toBe(false);
    expect(JSON.parse(readFileSync(path.join(t.root, 'run/state.json'), 'utf8')).live).toBe('green');
    expect(moveTrafficScript(t.root, 'blue', state({}), undefined).text).toMatch(/ln -sfn blue.sock .*\nmv -T /);
    const live = bash(`${unlessLiveScript(t.root, 'green').text}\necho went on`);
    expect(live.stdout).toBe('@@live\n');
    expect(bash(`${unlessLiveScript(t.root, 'blue').text}\necho went on`).stdout).toBe('went on\n');
  });
});

describe('backIfLiveScript', () => {
  it('moves traffic back only when it goes to the slot; a failing move back fails the script', () => {
    const t = setUp();
    mkdirSync(path.join(t.root, 'run'));
    const toGreen = moveTrafficScript(t.root, 'green', state({ live: 'green', blue: A, green: B }), undefined);
    const toBlue = moveTrafficScript(t.root, 'blue', state({ live: 'blue', blue: A, green: B }), undefined);
    expect(bash(toGreen.text).code).toBe(0);
    const back = bash(`${backIfLiveScript(t.root, 'green', false, toBlue).text}\necho went on`);
    expect(back).toMatchObject({ code: 0, stdout: '@@moved-back\nwent on\n' });
    expect(readlinkSync(path.join(t.root, 'run/live.sock'))).toBe('blue.sock');
    expect(JSON.parse(readFileSync(path.join(t.root, 'run/state.json'), 'utf8')).live).toBe('blue');
    // Traffic is not on green (any more): nothing moves.
    expect(bash(`${backIfLiveScript(t.root, 'green', false, toGreen).text}\necho went on`).stdout).toBe('went on\n');
    expect(readlinkSync(path.join(t.root, 'run/live.sock'))).toBe('blue.sock');
    // listen 'port': run/upstream.conf's first line names the live slot.
    writeFileSync(path.join(t.root, 'run/upstream.conf'), '# slot green\nserver 127.0.0.1:9002;\n');
    const fails = raw('set -e\nfalse\necho not here');
    const failing = bash(`${backIfLiveScript(t.root, 'green', true, fails).text}\necho went on`);
    expect(failing).toMatchObject({ code: 1, stdout: '' });
  });
});

describe('stopSlotScript', () => {
  it('stops the old slot (one supervisorctl call) and takes its autostart away; the live one keeps it', () => {
    const t = setUp();
    mkdirSync(path.join(t.root, 'run'));
    const command = stopSlotScript(t.services, t.root, {
      slot: 'blue',
      release: A,
      live: { slot: 'green', release: B, autostart: true },
      state: state({ live: 'green', blue: A, green: B }),
    });
    expect(bash(command.text).code).toBe(0);
    expect(t.calls()).toEqual(['stop hello-blue']);
    expect(t.programs()).toBe(
      `[program:hello-blue]\ndirectory=${t.root}/releases/${A}\nautostart=false\n\n` +
        `[program:hello-green]\ndirectory=${t.root}/releases/${B}\nautostart=true\n`,
    );
    expect(JSON.parse(readFileSync(path.join(t.root, 'run/state.json'), 'utf8')).operation).toBeNull();
  });

  it('through the helper: its slot-stop, nothing else privileged', () => {
    const services: Services = {
      sudo: 'sudo -n',
      helper: { command: '/usr/local/sbin/slipway-services', application: 'hello' },
      supervisor: { program: '', ctl: '', name: 'hello' },
    };
    const text = stopSlotScript(services, '/srv/app', { slot: 'green', release: A, live: null, state: state({}) }).text;
    expect(text).toContain('sudo -n /usr/local/sbin/slipway-services hello slot-stop green');
    expect(text).not.toContain('supervisorctl');
    expect(writeSlotStateScript('/srv/app', state({})).text).toContain(
      'mv -f /srv/app/run/state.json.new /srv/app/run/state.json',
    );
  });
});
