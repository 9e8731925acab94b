// setup's builders (tasks/scripts/setup.ts): the script's quoting, its output parsed, and its folder/file functions run for real by bash (as root, in a temp dir).
import { execFileSync, spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { script } from '../../../tasks/lib/sh.js';
import {
  asAdmin,
  deployUserScript,
  FOLDERS_AND_FILES,
  keyLabel,
  PUBLIC_KEY,
  parseSetupOutput,
  type SetupSpec,
  setupScript,
} from '../../../tasks/scripts/setup.js';
import { bash, scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('setup');
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG5vdC1hLXJlYWwta2V5LWJ1dC1yaWdodC1zaGFwZQ me@laptop';

describe('keys', () => {
  it('PUBLIC_KEY takes a real .pub line, not a private key or a line with options', () => {
    const dir = freshDir();
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'a b', '-f', path.join(dir, 'k')]);
    expect(PUBLIC_KEY.test(readFileSync(path.join(dir, 'k.pub'), 'utf8').trim())).toBe(true);
    expect(PUBLIC_KEY.test(readFileSync(path.join(dir, 'k'), 'utf8').split('\n')[0])).toBe(false);
    expect(PUBLIC_KEY.test(`command="sh" ${KEY}`)).toBe(false);
    expect(keyLabel(KEY)).toBe('ssh-ed25519 …1zaGFwZQ me@laptop');
  });
});

describe('setupScript', () => {
  const spec: SetupSpec = {
    user: 'deploy',
    deployTo: "/srv/it's here",
    authorizedKeys: [KEY],
    shared: { dirs: ['logs'], files: ['config/local.json'] },
    runtime: 'node',
  };

  it('every value quoted: bash parses it; a hostile key or path is data, not code', () => {
    const hostile = { ...spec, deployTo: '/srv/$(touch /tmp/pwned)', authorizedKeys: [`${KEY}'; touch /tmp/pwned`] };
    for (const s of [spec, hostile]) {
      expect(spawnSync('bash', ['-n', '-c', setupScript(s).text]).status).toBe(0);
      expect(spawnSync('bash', ['-n', '-c', deployUserScript(s).text]).status).toBe(0);
    }
    expect(setupScript(hostile).text).toContain("'/srv/$(touch /tmp/pwned)'");
  });

  it('the parents of a shared file are made before it, inside shared/', () => {
    const text = deployUserScript(spec).text;
    expect(text.indexOf("mkdir '/srv/it'\\''s here/shared/config'")).toBeGreaterThan(-1);
    expect(text.indexOf("mkdir '/srv/it'\\''s here/shared/config'")).toBeLessThan(
      text.indexOf("'/srv/it'\\''s here/shared/config/local.json'"),
    );
  });

  it('as a user other than root: through sudo -n, refused with the fix when sudo asks for a password', () => {
    const command = setupScript(spec);
    expect(asAdmin(command, 'root')).toBe(command);
    const admin = asAdmin(command, 'admin').text;
    expect(admin).toContain('exec sudo -n bash -c ');
    expect(admin).toContain('admin cannot sudo without a password');
  });

  it('parseSetupOutput: changes, unchanged items, what is missing with its fix, a refusal', () => {
    expect(
      parseSetupOutput(
        'noise\n@@changed user deploy created\n@@ok deploy root /srv/hello\n' +
          '@@missing node and npm (dependencies: node)\tapt-get install nodejs npm\n@@refused deployTo /x is not a folder',
      ),
    ).toEqual({
      changed: ['user deploy created'],
      unchanged: ['deploy root /srv/hello'],
      missing: [{ what: 'node and npm (dependencies: node)', fix: 'apt-get install nodejs npm' }],
      refused: 'deployTo /x is not a folder',
    });
  });
});

describe("setup's folder and file functions, run by bash (as root)", () => {
  const run = (body: string) => bash(`${script(...FOLDERS_AND_FILES).text}\n${body}`);

  it('ensure_dir: made, then unchanged; a wrong mode is set back; a link is refused, never followed', () => {
    const dir = freshDir();
    const target = path.join(dir, 'a', 'b');
    expect(run(`ensure_dir '${target}' root root 755 folder`).stdout).toBe(`@@changed folder ${target} created\n`);
    expect(run(`ensure_dir '${target}' root root 755 folder`).stdout).toBe(`@@ok folder ${target}\n`);
    execFileSync('chmod', ['0777', target]);
    expect(run(`ensure_dir '${target}' root root 755 folder`).stdout).toContain('now root:root, mode 755');
    expect(statSync(target).mode & 0o777).toBe(0o755);
    const elsewhere = path.join(dir, 'elsewhere');
    mkdirSync(elsewhere, { mode: 0o700 });
    symlinkSync(elsewhere, path.join(dir, 'link'));
    const refused = run(`ensure_dir '${path.join(dir, 'link')}' root root 755 folder`);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain('@@refused folder');
    expect(statSync(elsewhere).mode & 0o777).toBe(0o700);
  });

  it('put_file: installed, then unchanged; a link at the target is replaced, its target untouched', () => {
    const dir = freshDir();
    const source = path.join(dir, 'source');
    writeFileSync(source, 'rule\n');
    const target = path.join(dir, 'target');
    expect(run(`put_file '${source}' '${target}' 440 rule`).stdout).toBe(`@@changed rule ${target} installed\n`);
    expect(statSync(target).mode & 0o777).toBe(0o440);
    expect(run(`put_file '${source}' '${target}' 440 rule`).stdout).toBe(`@@ok rule ${target}\n`);
    writeFileSync(source, 'rule 2\n');
    expect(run(`put_file '${source}' '${target}' 440 rule`).stdout).toBe(`@@changed rule ${target} updated\n`);
    const victim = path.join(dir, 'victim');
    writeFileSync(victim, 'original\n');
    const linked = path.join(dir, 'linked');
    symlinkSync(victim, linked);
    run(`put_file '${source}' '${linked}' 440 rule`);
    expect(lstatSync(linked).isSymbolicLink()).toBe(false);
    expect(readFileSync(victim, 'utf8')).toBe('original\n');
    expect(() => readlinkSync(linked)).toThrow();
  });
});
