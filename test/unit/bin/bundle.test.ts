// The cached fabfile bundle: found from any folder below the project, bundled once, reused while every
// file it was bundled from is unchanged (same size and time, or same content), bundled again otherwise.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cachePaths, fabfileBundle, findFabfile } from '../../../tasks/bin/bundle.js';
import { scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('bundle');

/** A project whose fabfile.ts prints a word from ./words.ts and its own folder (import.meta.dirname). */
function project(): string {
  const dir = freshDir();
  writeFileSync(path.join(dir, 'words.ts'), "export const word: string = 'alpha';\n");
  writeFileSync(
    path.join(dir, 'fabfile.ts'),
    "import { word } from './words.js';\nconsole.log(`${word} ${import.meta.dirname}`);\n",
  );
  return dir;
}

const runBundle = (file: string) => execFileSync(process.execPath, [file], { encoding: 'utf8' }).trim();

describe('findFabfile', () => {
  it('finds fabfile.ts in the folder or the nearest one above; none: undefined', () => {
    const dir = project();
    mkdirSync(path.join(dir, 'src/deep'), { recursive: true });
    expect(findFabfile(path.join(dir, 'src/deep'))).toBe(path.join(dir, 'fabfile.ts'));
    expect(findFabfile(dir)).toBe(path.join(dir, 'fabfile.ts'));
    expect(findFabfile('/proc/self')).toBeUndefined();
  });
});

describe('fabfileBundle', () => {
  it('bundles once into node_modules/.cache/slipway; import.meta.dirname is the fabfile folder', async () => {
    const dir = project();
    const why: string[] = [];
    const bundle = await fabfileBundle(path.join(dir, 'fabfile.ts'), (w) => why.push(w));
    expect(why).toEqual(['first run']);
    expect(path.dirname(bundle)).toBe(cachePaths(path.join(dir, 'fabfile.ts')).dir);
    expect(path.dirname(bundle)).toBe(path.join(dir, 'node_modules/.cache/slipway'));
    expect(runBundle(bundle)).toBe(`alpha ${dir}`);
    expect(await fabfileBundle(path.join(dir, 'fabfile.ts'), (w) => why.push(w))).toBe(bundle);
    expect(why).toEqual(['first run']);
  });

  it('an imported module changed to the same size: its content tells, and it bundles again', async () => {
    const dir = project();
    const fabfile = path.join(dir, 'fabfile.ts');
    const first = await fabfileBundle(fabfile, () => undefined);
    writeFileSync(path.join(dir, 'words.ts'), "export const word: string = 'omega';\n");
    const why: string[] = [];
    const second = await fabfileBundle(fabfile, (w) => why.push(w));
    expect(why).toEqual([`${path.relative(process.cwd(), path.join(dir, 'words.ts'))} changed`]);
    expect(runBundle(second)).toBe(`omega ${dir}`);
    expect(second).not.toBe(first);
  });

  it('a file touched but not changed (new time, same content) does not bundle again', async () => {
    const dir = project();
    const fabfile = path.join(dir, 'fabfile.ts');
    const first = await fabfileBundle(fabfile, () => undefined);
    const later = new Date(Date.now() + 60_000);
    utimesSync(path.join(dir, 'words.ts'), later, later);
    const why: string[] = [];
    expect(await fabfileBundle(fabfile, (w) => why.push(w))).toBe(first);
    expect(why).toEqual([]);
  });

  it("the project's own packages stay out of the bundle, imported by absolute path; moved, it bundles again", async () => {
    const dir = project();
    const pkg = path.join(dir, 'node_modules/greet');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'greet', type: 'module', main: 'index.js' }));
    writeFileSync(path.join(pkg, 'index.js'), "export const greet = 'hi from greet';\n");
    writeFileSync(path.join(dir, 'words.ts'), "export { greet as word } from 'greet';\n");
    const fabfile = path.join(dir, 'fabfile.ts');
    const bundle = await fabfileBundle(fabfile, () => undefined);
    const text = readFileSync(bundle, 'utf8');
    expect(text).toContain(JSON.stringify(path.join(pkg, 'index.js')));
    expect(text).not.toContain('hi from greet');
    expect(runBundle(bundle)).toBe(`hi from greet ${dir}`);
    // A reinstall that lays the package out differently: the recorded file is gone, so it bundles again.
    execFileSync('mv', [path.join(pkg, 'index.js'), path.join(pkg, 'main.js')]);
    writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'greet', type: 'module', main: 'main.js' }));
    const why: string[] = [];
    const again = await fabfileBundle(fabfile, (w) => why.push(w));
    expect(why.join()).toContain('node_modules/greet/index.js changed');
    expect(runBundle(again)).toBe(`hi from greet ${dir}`);
  });

  it('slipway is bundled, but not the AWS SDK it imports: that stays a file of node_modules, loaded when used', async () => {
    const dir = project();
    const put = (file: string, text: string) => {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), text);
    };
    put('node_modules/slipway/package.json', JSON.stringify({ name: 'slipway', type: 'module', main: 'index.js' }));
    put('node_modules/slipway/index.js', "export const s3 = () => import('@aws-sdk/client-s3');\n");
    const sdk = 'node_modules/@aws-sdk/client-s3';
    put(`${sdk}/package.json`, JSON.stringify({ name: '@aws-sdk/client-s3', type: 'module', main: 'index.js' }));
    put(`${sdk}/index.js`, "export const marker = 'the SDK itself';\n");
    put('fabfile.ts', "import { s3 } from 'slipway';\nconsole.log((await s3()).marker);\n");
    const bundle = await fabfileBundle(path.join(dir, 'fabfile.ts'), () => undefined);
    const text = readFileSync(bundle, 'utf8');
    expect(text).toContain('() => import('); // slipway's own code is in the bundle
    expect(text).not.toContain('the SDK itself');
    expect(runBundle(bundle)).toBe('the SDK itself');
  });

  it('a module gone, or the bundle removed from the cache: bundles again (or fails naming the import)', async () => {
    const dir = project();
    const fabfile = path.join(dir, 'fabfile.ts');
    const first = await fabfileBundle(fabfile, () => undefined);
    const manifest = JSON.parse(readFileSync(cachePaths(fabfile).manifest, 'utf8'));
    expect(Object.keys(manifest.inputs).sort()).toEqual([fabfile, path.join(dir, 'words.ts')]);
    execFileSync('rm', [first]);
    const why: string[] = [];
    expect(await fabfileBundle(fabfile, (w) => why.push(w))).toBe(first);
    expect(why).toEqual(['the bundle is gone']);
    execFileSync('rm', [path.join(dir, 'words.ts')]);
    await expect(fabfileBundle(fabfile, () => undefined)).rejects.toThrow(/words\.js/);
  });
});
