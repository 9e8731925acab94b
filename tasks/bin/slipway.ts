#!/usr/bin/env node
// The `slipway` command. `slipway init` writes the scaffold into the app's repository (the current
// folder); anything else runs the project's fabfile.ts (here or in the nearest folder above) with these
// arguments, through its cached bundle (bundle.ts): `npx slipway deploy` is `npx tsx fabfile.ts deploy`
// without tsx's start-up.
import { pathToFileURL } from 'node:url';
import { fabfileBundle, findFabfile } from './bundle.js';

const USAGE = `usage: slipway init           write fabfile.ts, deploy.config.ts, templates/ and .env.production.example here
       slipway TASK [options]  run a task of the project's fabfile.ts (npx slipway --list: the tasks)`;

const argv = process.argv.slice(2);

if (argv[0] === 'init') {
  if (argv.length > 1) {
    process.stderr.write(`error: init takes no arguments, got ${argv.slice(1).join(' ')}\n${USAGE}\n`);
    process.exit(2);
  }
  const { init } = await import('../init/init.js');
  try {
    const { report } = init(process.cwd());
    process.stdout.write(`${report.join('\n')}\n`);
  } catch (error) {
    process.stderr.write(`error: ${(error as Error).message}\n`);
    process.exit(1);
  }
} else {
  const fabfile = findFabfile(process.cwd());
  if (!fabfile) {
    const help = argv.length === 0 || argv.includes('--help');
    process.stderr.write(
      `${help ? '' : `error: no fabfile.ts in ${process.cwd()} or a folder above it; \`npx slipway init\` writes one\n`}` +
        `${USAGE}\n`,
    );
    process.exit(help ? 0 : 2);
  }
  let bundle: string;
  try {
    bundle = await fabfileBundle(fabfile, (why) => process.stderr.write(`slipway: bundling fabfile.ts (${why})\n`));
  } catch (error) {
    // esbuild's message names the file, line and what it expected.
    process.stderr.write(`error: ${fabfile} does not build: ${(error as Error).message}\n`);
    process.exit(2);
  }
  // The fabfile reads process.argv itself (runTasks), as under tsx.
  await import(pathToFileURL(bundle).href);
}
