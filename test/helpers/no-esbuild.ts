// A Node option under which any import of esbuild fails (a module resolve hook registered by --import): a run
// that takes its builds from slipway's cache (the fabfile bundle, a compiled deploy.config.ts) must not need it.
//   spawnSync(process.execPath, [NO_ESBUILD, 'fabfile.mjs', …]) or env NODE_OPTIONS: NO_ESBUILD
const HOOK =
  'export async function resolve(specifier, context, next) {\n' +
  "  if (/^esbuild(\\/|$)/.test(specifier)) throw new Error('esbuild is not to be loaded');\n" +
  '  return next(specifier, context);\n}\n';
const REGISTER = `import { register } from 'node:module';\nregister(${JSON.stringify(
  `data:text/javascript,${encodeURIComponent(HOOK)}`,
)});\n`;

export const NO_ESBUILD = `--import=data:text/javascript,${encodeURIComponent(REGISTER)}`;
