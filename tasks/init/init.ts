// `slipway init`: writes the scaffold into an app's repository, never over a file that is there (it
// says which it skipped), and adds slipway and tsx to package.json's devDependencies.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type DetectedApp, detectApp } from './detect.js';
import { configText, envExampleText, fabfileText, nginxTemplateText, supervisorTemplateText } from './scaffold.js';

export interface InitResult {
  app: DetectedApp;
  written: string[];
  skipped: string[];
  /** devDependencies added to package.json. */
  added: string[];
  /** Lines to print: what was found, what was written and skipped, what to do next. */
  report: string[];
}

interface OwnPackage {
  name: string;
  version: string;
  dependencies: Record<string, string>;
}

/** The folder of slipway's own package.json above this file (the checkout, or node_modules/slipway). */
export function packageRoot(from = import.meta.dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as { name?: string }).name === 'slipway')
      return dir;
    if (path.dirname(dir) === dir) throw new Error(`slipway's package.json not found above ${from}`);
  }
}

/** Where the app got slipway from, as package-lock.json recorded it (a tarball, a git URL). */
function lockedSlipway(dir: string): string | undefined {
  const lock = path.join(dir, 'package-lock.json');
  if (!existsSync(lock)) return undefined;
  const packages = (JSON.parse(readFileSync(lock, 'utf8')) as { packages?: Record<string, { resolved?: string }> })
    .packages;
  return packages?.['node_modules/slipway']?.resolved;
}

/** Adds slipway and tsx to devDependencies when package.json lists neither; returns what it added. */
function addDevDependencies(dir: string, own: OwnPackage, report: string[]): string[] {
  const file = path.join(dir, 'package.json');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const pkg = text ? (JSON.parse(text) as Record<string, Record<string, string> | undefined>) : { private: undefined };
  const listed = (name: string) => Boolean(pkg.dependencies?.[name] ?? pkg.devDependencies?.[name]);
  const wanted: Record<string, string> = {};
  if (!listed('slipway')) {
    const from = lockedSlipway(dir);
    if (from) wanted.slipway = from;
    else report.push('note: slipway is not in package.json: `npm install --save-dev <the tarball or git URL>`');
  }
  if (!listed('tsx')) wanted.tsx = own.dependencies.tsx;
  const added = Object.keys(wanted);
  if (!added.length) return added;
  pkg.devDependencies = Object.fromEntries(
    Object.entries({ ...pkg.devDependencies, ...wanted }).sort(([a], [b]) => a.localeCompare(b)),
  );
  if (!text) (pkg as Record<string, unknown>).private = true;
  const indent = /^[ \t]+(?=")/m.exec(text)?.[0] ?? '  ';
  writeFileSync(file, `${JSON.stringify(pkg, null, indent)}\n`);
  return added;
}

export function init(dir: string, root = packageRoot()): InitResult {
  const own = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as OwnPackage;
  const app = detectApp(dir);
  const files: Array<[string, () => string]> = [
    ['fabfile.ts', () => fabfileText(root)],
    ['deploy.config.ts', () => configText(app)],
    ['templates/nginx.conf.hbs', () => nginxTemplateText(root)],
    ['templates/supervisor.conf.hbs', () => supervisorTemplateText(root, app)],
    ['.env.production.example', () => envExampleText(app)],
  ];
  const written: string[] = [];
  const skipped: string[] = [];
  for (const [name, text] of files) {
    const file = path.join(dir, name);
    if (existsSync(file)) {
      skipped.push(name);
      continue;
    }
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text(), { flag: 'wx' }); // wx: never over a file that appeared meanwhile
    written.push(name);
  }
  const report = [
    `application: ${app.application}`,
    `dependencies: ${app.dependencies} (${app.dependenciesReason})`,
    `command: ${app.command} (${app.commandReason})`,
    ...app.warnings.map((w) => `warning: ${w}`),
    ...written.map((f) => `wrote ${f}`),
    ...skipped.map((f) => `skipped ${f}: it exists (not overwritten)`),
  ];
  const added = addDevDependencies(dir, own, report);
  if (added.length) {
    report.push(
      `added ${added.join(' and ')} to devDependencies in package.json: run \`npm install\` to update ` +
        'package-lock.json, and commit both (hosts install with `npm ci`, from the committed lockfile)',
    );
  }
  report.push(
    'next: `npx slipway deploy` deploys the committed HEAD to this machine (.deploy/); ' +
      'then edit deploy.config.ts for production (README: "Deploy your own app")',
  );
  return { app, written, skipped, added, report };
}
