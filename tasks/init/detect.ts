// What `slipway init` reads of an app's repository: its name, which dependencies a release needs
// (from the lockfile found) and the command that starts it. Reads files, writes nothing.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface DetectedApp {
  /** A valid `application`: package.json's name (without its scope) or the folder's, as [a-z0-9][a-z0-9-]*. */
  application: string;
  dependencies: 'node' | 'python' | 'none';
  /** Why that dependencies type: the file it was read from, or what is missing. */
  dependenciesReason: string;
  /** The supervisor program's command (run in the release folder; handlebars, as the template is). */
  command: string;
  commandReason: string;
  /** What the user should know: a lockfile npm ci cannot use, no entry found, … */
  warnings: string[];
  packageJson?: PackageJson;
}

export interface PackageJson {
  name?: string;
  main?: string;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

/** A name valid as `application`: lower case, runs of anything else as one "-", no leading "-". */
export function applicationName(raw: string): string {
  const name = raw
    .replace(/^@[^/]+\//, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return name || 'app';
}

/** A start script supervisor can run as is: `node <file> [args]`, nothing a shell would have to read. */
const PLAIN_NODE = /^node(\s+[A-Za-z0-9_./@=:-]+)+$/;

const NODE_ENTRIES = ['server.js', 'app.js', 'index.js', 'main.js', 'server.mjs', 'app.mjs', 'index.mjs'];
const PYTHON_ENTRIES = ['app.py', 'main.py', 'server.py', 'wsgi.py'];

function readPackageJson(dir: string): PackageJson | undefined {
  const file = path.join(dir, 'package.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as PackageJson;
  } catch (error) {
    throw new Error(`${file}: not valid JSON (${(error as Error).message})`);
  }
}

export function detectApp(dir: string): DetectedApp {
  const pkg = readPackageJson(dir);
  const has = (f: string) => existsSync(path.join(dir, f));
  const warnings: string[] = [];
  const application = applicationName(pkg?.name ?? path.basename(path.resolve(dir)));
  const appDependencies = Object.keys(pkg?.dependencies ?? {});

  let dependencies: DetectedApp['dependencies'] = 'none';
  let dependenciesReason = 'no package-lock.json or requirements.txt found';
  if (has('package-lock.json') || has('npm-shrinkwrap.json')) {
    dependencies = 'node';
    dependenciesReason = `found ${has('package-lock.json') ? 'package-lock.json' : 'npm-shrinkwrap.json'}`;
  } else if (has('requirements.txt')) {
    dependencies = 'python';
    dependenciesReason = 'found requirements.txt';
  } else if (appDependencies.length) {
    dependencies = 'node';
    dependenciesReason = 'package.json lists dependencies';
    const other = ['yarn.lock', 'pnpm-lock.yaml', 'bun.lockb'].find(has);
    warnings.push(
      `${other ? `found ${other}, but ` : ''}slipway installs with \`npm ci\`, which needs package-lock.json: ` +
        'run `npm install` and commit package-lock.json before deploying',
    );
  }

  let command: string;
  let commandReason: string;
  const start = pkg?.scripts?.start?.trim();
  if (start && PLAIN_NODE.test(start)) {
    command = start;
    commandReason = "package.json's start script";
  } else if (start) {
    // Shell syntax or a package's binary: npm runs it (with node_modules/.bin on its PATH).
    command = 'npm start';
    commandReason = `package.json's start script (\`${start}\`), through npm`;
  } else if (dependencies === 'python' || (!pkg && PYTHON_ENTRIES.some(has))) {
    const entry = PYTHON_ENTRIES.find(has) ?? 'app.py';
    command = `{{currentPath}}/.venv/bin/python ${entry}`; // supervisor looks a relative path up from its own folder
    commandReason = PYTHON_ENTRIES.some(has) ? `found ${entry}` : 'no entry found (app.py assumed)';
  } else {
    const entry = (pkg?.main && has(pkg.main) ? pkg.main : undefined) ?? NODE_ENTRIES.find(has);
    command = `node ${entry ?? 'server.js'}`;
    commandReason = entry ? (entry === pkg?.main ? "package.json's main" : `found ${entry}`) : 'no entry found';
  }
  if (commandReason.startsWith('no entry found')) {
    warnings.push(`no start script or entry file found: edit the command in templates/supervisor.conf.hbs`);
  }
  return { application, dependencies, dependenciesReason, command, commandReason, warnings, packageJson: pkg };
}
