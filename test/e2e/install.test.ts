// slipway as a package in an app of its own: `npm pack`, the tarball installed into a fresh git
// repository of an express app (express from the npm registry), `npx slipway init`, a deploy to the
// local target, the scaffold type-checked, and `npx slipway <task>` through its cached bundle.
// The tarball is packed and installed once, in beforeAll (the install is the slow part).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_ESBUILD } from '../helpers/no-esbuild.js';
import { git, releaseIdOf, ROOT } from '../helpers/project.js';
import { freePort } from '../helpers/sshd.js';

let work: string;
let app: string;
let tarball: string;

const env = { ...process.env, CI: 'true', NO_COLOR: '1', npm_config_loglevel: 'error', npm_config_fund: 'false' };
const run = (command: string, args: string[]) => {
  const result = spawnSync(command, args, { cwd: app, env, encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
};
const npx = (...args: string[]) => run('npx', args);
const read = (file: string) => readFileSync(path.join(app, file), 'utf8');

const SERVER = `import express from 'express';
const app = express();
app.get('/', (req, res) => res.send('shop is up\\n'));
app.listen(Number(process.env.PORT ?? 8080), '127.0.0.1');
`;

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'slipway-install-'));
  // prepare builds dist/ (tsc): what the tarball ships.
  const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', work], { cwd: ROOT, env });
  tarball = path.join(work, packed.toString().trim().split('\n').pop()!);
  app = path.join(work, 'My_Shop');
  mkdirSync(app);
  writeFileSync(
    path.join(app, 'package.json'),
    `${JSON.stringify({ name: '@acme/my_shop', version: '1.0.0', type: 'module', scripts: { start: 'node server.js' } }, null, 2)}\n`,
  );
  writeFileSync(path.join(app, 'server.js'), SERVER);
  writeFileSync(path.join(app, '.gitignore'), 'node_modules/\n.deploy/\n.env.production\n');
  const install = (...args: string[]) =>
    execFileSync('npm', ['install', '--prefer-offline', '--no-audit', ...args], { cwd: app, env, stdio: 'pipe' });
  install('express@4');
  git(app, 'init', '-q', '-b', 'main');
  git(app, 'add', '-A');
  git(app, 'commit', '-qm', 'the app');
  install('--save-dev', tarball);
}, 600_000);

afterAll(() => work && rmSync(work, { recursive: true, force: true }));

describe('the packed slipway, installed into an app', () => {
  it('ships the built entry with its types, the templates, the install helper and the example fabfile', () => {
    const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n');
    for (const file of [
      'package/dist/tasks/index.js',
      'package/dist/tasks/index.d.ts',
      'package/dist/tasks/bin/slipway.js',
      'package/templates/nginx.conf.hbs',
      'package/templates/supervisor.conf.hbs',
      'package/server/slipway-services',
      'package/fabfile.ts',
    ])
      expect(files).toContain(file);
    expect(files.filter((f) => f.startsWith('package/test/') || f.startsWith('package/tasks/'))).toEqual([]);
    expect(existsSync(path.join(app, 'node_modules/.bin/slipway'))).toBe(true);
  });

  it('init writes the scaffold from what it finds: name, node dependencies, the start command', () => {
    const result = npx('slipway', 'init');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('application: my-shop');
    expect(result.stdout).toContain('dependencies: node (found package-lock.json)');
    for (const file of [
      'fabfile.ts',
      'deploy.config.ts',
      'templates/nginx.conf.hbs',
      'templates/supervisor.conf.hbs',
      '.env.production.example',
    ])
      expect(result.stdout).toContain(`wrote ${file}`);
    expect(read('fabfile.ts')).toContain("from 'slipway';");
    expect(read('fabfile.ts')).not.toContain('./tasks/');
    expect(read('deploy.config.ts')).toContain("import { defineConfig } from 'slipway';");
    expect(read('deploy.config.ts')).toContain("application: 'my-shop'");
    expect(read('deploy.config.ts')).toContain("dependencies: { type: 'node' }");
    expect(read('deploy.config.ts')).toMatch(/^ {4}\/\/ production: \{$/m);
    expect(read('templates/supervisor.conf.hbs')).toMatch(/^command=node server\.js$/m);
    const pkg = JSON.parse(read('package.json'));
    expect(pkg.devDependencies.tsx).toBe(
      JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).dependencies.tsx,
    );
    expect(pkg.devDependencies.slipway).toMatch(/slipway-.*\.tgz$/);
  });

  it('init run again skips every file that exists and changes none', () => {
    const before = Object.fromEntries(['fabfile.ts', 'deploy.config.ts', 'package.json'].map((f) => [f, read(f)]));
    writeFileSync(path.join(app, 'templates/nginx.conf.hbs'), '# mine\n');
    const result = npx('slipway', 'init');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).not.toMatch(/^wrote /m);
    for (const file of ['fabfile.ts', 'deploy.config.ts', 'templates/nginx.conf.hbs', '.env.production.example'])
      expect(result.stdout).toContain(`skipped ${file}: it exists (not overwritten)`);
    for (const [file, text] of Object.entries(before)) expect(read(file)).toBe(text);
    expect(read('templates/nginx.conf.hbs')).toBe('# mine\n');
    rmSync(path.join(app, 'templates/nginx.conf.hbs'));
    expect(npx('slipway', 'init').stdout).toContain('wrote templates/nginx.conf.hbs');
  });

  it('right after init, npx tsx fabfile.ts deploy ships the app with its node_modules, and it answers', async () => {
    const result = npx('tsx', 'fabfile.ts', 'deploy');
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const current = path.join(app, '.deploy/my-shop/current');
    expect(JSON.parse(readFileSync(path.join(current, '.slipway/release.json'), 'utf8')).id).toBe(
      releaseIdOf(result.stdout),
    );
    expect(existsSync(path.join(current, 'node_modules/express/package.json'))).toBe(true);
    // The release runs as supervisor would run it: the template's command in the release folder.
    const port = await freePort();
    const server = spawn('node', ['server.js'], { cwd: current, env: { ...env, PORT: String(port) }, stdio: 'ignore' });
    try {
      expect(await getWhenUp(port)).toBe('shop is up\n');
    } finally {
      server.kill();
    }
  });

  it('the scaffold type-checks against the installed package (fabfile.ts and deploy.config.ts)', () => {
    // The app's own TypeScript setup: NodeNext modules and Node's types (here: this repository's copies).
    writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [path.join(ROOT, 'node_modules/@types')],
        },
        files: ['fabfile.ts', 'deploy.config.ts'],
      }),
    );
    const clean = run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', '.']);
    expect(clean.code, clean.stdout + clean.stderr).toBe(0);
    // …and it does check: a wrong key in the config is an error.
    const config = read('deploy.config.ts');
    writeFileSync(path.join(app, 'deploy.config.ts'), config.replace('port: 8080', "port: '8080'"));
    const wrong = run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', '.']);
    writeFileSync(path.join(app, 'deploy.config.ts'), config);
    rmSync(path.join(app, 'tsconfig.json'));
    expect(wrong.code).not.toBe(0);
    expect(wrong.stdout).toMatch(/deploy\.config\.ts\(\d+,\d+\): error TS2322/);
  });
});

describe('npx slipway <task>: the fabfile through a cached bundle', () => {
  const cacheDir = () => path.join(app, 'node_modules/.cache/slipway');
  const bundleFile = () => {
    const manifest = readdirSync(cacheDir()).find((f) => /^fabfile-\w+\.json$/.test(f))!;
    return path.join(cacheDir(), JSON.parse(readFileSync(path.join(cacheDir(), manifest), 'utf8')).bundle);
  };

  it('bundles on the first run, then runs the cached bundle as it is', () => {
    rmSync(cacheDir(), { recursive: true, force: true });
    const first = npx('slipway', '--list');
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('slipway: bundling fabfile.ts (first run)');
    expect(first.stdout).toBe(npx('tsx', 'fabfile.ts', '--list').stdout);
    // What runs next is the cached file itself: a mark put into it shows, and nothing is bundled.
    const bundle = bundleFile();
    writeFileSync(bundle, readFileSync(bundle, 'utf8').replace('Remove releases beyond keepReleases now', 'CACHED'));
    const second = npx('slipway', '--list');
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toBe('');
    expect(second.stdout).toMatch(/^\s+purge\s+CACHED$/m);
  });

  it('an edit to a module fabfile.ts imports bundles again before running; the old bundle is removed', () => {
    mkdirSync(path.join(app, 'ops'), { recursive: true });
    writeFileSync(path.join(app, 'ops/words.ts'), "export const hello = 'Say hello';\n");
    writeFileSync(
      path.join(app, 'fabfile.ts'),
      read('fabfile.ts')
        .replace("from 'slipway';", "from 'slipway';\nimport { hello } from './ops/words.js';")
        .replace('    migrate: task(', '    hello: task(hello, async () => undefined),\n    migrate: task('),
    );
    const edited = npx('slipway', '--list');
    expect(edited.code, edited.stderr).toBe(0);
    expect(edited.stderr).toContain('slipway: bundling fabfile.ts (fabfile.ts changed)');
    expect(edited.stdout).toMatch(/^\s+hello\s+Say hello$/m);
    const before = bundleFile();
    writeFileSync(path.join(app, 'ops/words.ts'), "export const hello = 'Say hello again';\n");
    const again = npx('slipway', '--list');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('slipway: bundling fabfile.ts (ops/words.ts changed)');
    expect(again.stdout).toMatch(/^\s+hello\s+Say hello again$/m);
    expect(existsSync(before)).toBe(false);
    expect(statSync(bundleFile()).isFile()).toBe(true);
  });

  it('deploys and rolls back as npx tsx fabfile.ts does (the config found beside fabfile.ts)', () => {
    const deployed = npx('slipway', 'deploy');
    expect(deployed.code, deployed.stderr + deployed.stdout).toBe(0);
    const id = releaseIdOf(deployed.stdout);
    const meta = () =>
      JSON.parse(readFileSync(path.join(app, '.deploy/my-shop/current/.slipway/release.json'), 'utf8'));
    expect(meta().id).toBe(id);
    const back = npx('slipway', 'rollback');
    expect(back.code, back.stderr + back.stdout).toBe(0);
    expect(meta().id).not.toBe(id);
  });

  it('a run with nothing changed loads no esbuild: the bundle and the compiled deploy.config.ts come from the cache', () => {
    // The deploy above bundled fabfile.ts and compiled deploy.config.ts; esbuild made unloadable now.
    const result = spawnSync('npx', ['slipway', 'releases'], {
      cwd: app,
      env: { ...env, NODE_OPTIONS: NO_ESBUILD },
      encoding: 'utf8',
    });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/releases: done/);
    expect(readdirSync(path.join(app, 'node_modules/.cache/slipway'))).toEqual(
      expect.arrayContaining([expect.stringMatching(/^config-\w+\.mjs$/), expect.stringMatching(/^fabfile-\w+\.mjs$/)]),
    );
    // A fabfile.ts changed needs esbuild again, and says so when it cannot load it.
    writeFileSync(path.join(app, 'fabfile.ts'), `${read('fabfile.ts')}\n`);
    const changed = spawnSync('npx', ['slipway', 'releases'], {
      cwd: app,
      env: { ...env, NODE_OPTIONS: NO_ESBUILD },
      encoding: 'utf8',
    });
    expect(changed.status).toBe(2);
    expect(changed.stderr).toContain('esbuild is not to be loaded');
  });

  it('a fabfile.ts that does not build: exit 2 naming the file and the error; fixed, it runs again', () => {
    const original = read('fabfile.ts');
    writeFileSync(path.join(app, 'fabfile.ts'), `${original}\nexport const broken = {`);
    const result = npx('slipway', '--list');
    writeFileSync(path.join(app, 'fabfile.ts'), original);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`error: ${path.join(app, 'fabfile.ts')} does not build:`);
    expect(result.stderr).toMatch(/Unexpected end of file|Expected/);
    expect(npx('slipway', '--list').code).toBe(0);
  });

  it('outside a project: exit 2, saying init writes a fabfile', () => {
    const result = spawnSync('node', [path.join(app, 'node_modules/.bin/slipway'), 'deploy'], {
      cwd: work,
      encoding: 'utf8',
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(`no fabfile.ts in ${work} or a folder above it; \`npx slipway init\` writes one`);
  });
});

/** GET / until the app answers (it is starting), for up to ~10 s. */
async function getWhenUp(port: number): Promise<string> {
  for (let i = 0; ; i++) {
    try {
      return await new Promise<string>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: '/' }, (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve(body));
          })
          .on('error', reject);
      });
    } catch (error) {
      if (i >= 100) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
