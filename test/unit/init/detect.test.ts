// What init reads of an app: name, dependencies from the lockfile, the start command.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
// What init reads of an app: name, dependencies from the lockfile, the start command.
import { describe, expect, it } from 'vitest';
import { applicationName, detectApp } from '../../../tasks/init/detect.js';
import { scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('detect');

/** A fresh app folder holding these files (package.json given as an object). */
function app(name: string, files: Record<string, string | object>): string {
  const dir = path.join(freshDir(), name);
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), typeof text === 'string' ? text : JSON.stringify(text));
  }
  return dir;
}

describe('applicationName', () => {
  it('makes a valid application name of a package or folder name', () => {
    expect(applicationName('@acme/My_Shop')).toBe('my-shop');
    expect(applicationName('hello')).toBe('hello');
    expect(applicationName('--Web App 2--')).toBe('web-app-2');
    expect(applicationName('@@@')).toBe('app');
  });
});

describe('detectApp', () => {
  it("a node app with a lockfile: node dependencies, package.json's name, its plain start script as the command", () => {
    const found = detectApp(
      app('x', {
        'package.json': { name: 'shop', scripts: { start: 'node src/main.js --port=3000' } },
        'package-lock.json': '{}',
      }),
    );
    expect(found).toMatchObject({
      application: 'shop',
      dependencies: 'node',
      dependenciesReason: 'found package-lock.json',
      command: 'node src/main.js --port=3000',
      warnings: [],
    });
  });

  it('a start script with shell syntax or a package binary runs through npm start', () => {
    const found = detectApp(app('x', { 'package.json': { scripts: { start: 'NODE_ENV=production next start' } } }));
    expect(found.command).toBe('npm start');
    expect(found.commandReason).toContain('NODE_ENV=production next start');
  });

  it("without a start script: package.json's main if it is there, else the first entry file found", () => {
    expect(detectApp(app('Api', { 'package.json': { main: 'lib/api.js' }, 'lib/api.js': '' }))).toMatchObject({
      command: 'node lib/api.js',
      commandReason: "package.json's main",
      application: 'api', // the folder's name: package.json has none
    });
    expect(detectApp(app('svc', { 'package.json': { main: 'gone.js' }, 'app.js': '' })).command).toBe('node app.js');
  });

  it('dependencies listed without package-lock.json: node, with a warning that npm ci needs the lockfile', () => {
    const found = detectApp(app('x', { 'package.json': { dependencies: { express: '^4' } }, 'yarn.lock': '' }));
    expect(found.dependencies).toBe('node');
    expect(found.warnings.join('\n')).toContain('found yarn.lock, but slipway installs with `npm ci`');
  });

  it("a python app: requirements.txt → python, the venv's python runs the entry (by absolute path)", () => {
    const found = detectApp(app('flask-app', { 'requirements.txt': 'flask\n', 'wsgi.py': '' }));
    expect(found).toMatchObject({ application: 'flask-app', dependencies: 'python' });
    expect(found.command).toBe('{{currentPath}}/.venv/bin/python wsgi.py');
  });

  it('nothing to install and no entry: none, and a warning to edit the command', () => {
    const found = detectApp(app('static', { 'index.html': '' }));
    expect(found.dependencies).toBe('none');
    expect(found.warnings.join('\n')).toContain('edit the command in templates/supervisor.conf.hbs');
  });
});
