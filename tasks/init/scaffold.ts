// The files `slipway init` writes into an app's repository, as text: fabfile.ts (the package's own
// fabfile.ts, importing from 'slipway'), deploy.config.ts, the two templates and .env.production.example.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { DetectedApp } from './detect.js';

/** The import line of the package's fabfile.ts that an app's fabfile replaces with the package's name. */
const OWN_ENTRY = "from './tasks/index.js';";

/** The package's fabfile.ts (the example and the standard tasks), as an app's copy imports it. */
export function fabfileText(packageRoot: string): string {
  const own = readFileSync(path.join(packageRoot, 'fabfile.ts'), 'utf8');
  if (!own.includes(OWN_ENTRY))
    throw new Error(`${packageRoot}/fabfile.ts: no import ${OWN_ENTRY} to point at 'slipway'`);
  const body = own.slice(own.indexOf('import {'));
  return (
    "// slipway's tasks for this app: `npx slipway deploy` (or `npx tsx fabfile.ts deploy`), `rollback`, …\n" +
    '// This file is the deploy story; change your deploy by editing it (add a step, a hook, a task).\n' +
    body.replace(OWN_ENTRY, "from 'slipway';")
  );
}

export function configText(app: DetectedApp): string {
  const a = app.application;
  return `// slipway's deploy configuration for ${a} (every key and default: slipway's README, "Configuration").
// Paths are relative to this file's folder: repository, templates/, the .env and .env.<environment>
// files, and a local host's deployTo. An SSH host's deployTo is absolute.
import { defineConfig } from 'slipway';

export default defineConfig({
  application: '${a}',
  repository: '.', // this git repository; a release is \`git archive\` of ref (default HEAD): commit first
  dependencies: { type: '${app.dependencies}' }, // ${app.dependenciesReason}
  shared: { dirs: ['logs'] }, // kept across releases in <deployTo>/shared (supervisor's logs go there)
  port: 8080, // {{port}} in templates/: the app listens here (PORT), nginx proxies to it
  environments: {
    // \`npx slipway deploy\` goes here: this machine, into .deploy/${a} beside this file.
    local: {
      hosts: [{ name: 'local', local: true, deployTo: '.deploy/${a}' }],
    },
    // \`npx slipway deploy --env production\`, once your server is ready (\`npx slipway setup\`, then \`check\`).
    // Its secrets go in .env.production (never committed; see .env.production.example).
    // production: {
    //   hosts: [
    //     // privateKey: your key; setup logs in with it as root and authorizes its .pub for the deploy user
    //     { name: 'web1', host: 'web1.example.com', user: 'deploy', privateKey: '~/.ssh/id_ed25519',
    //       deployTo: '/srv/${a}' },
    //   ],
    //   serverName: '${a}.example.com',
    //   runAs: 'deploy', // supervisor runs the program as this user (user= in templates/supervisor.conf.hbs)
    //   services: { helper: '/usr/local/sbin/slipway-services' }, // nginx + supervisor through the root helper
    //   vars: { logDir: '/var/log/slipway/${a}' },
    //   healthcheck: { url: 'http://127.0.0.1:8080/' },
    // },
  },
});
`;
}

/** The package's supervisor template with this app's command. */
export function supervisorTemplateText(packageRoot: string, app: DetectedApp): string {
  const own = readFileSync(path.join(packageRoot, 'templates/supervisor.conf.hbs'), 'utf8');
  const line = /^command=.*$/m;
  if (!line.test(own)) throw new Error(`${packageRoot}/templates/supervisor.conf.hbs: no command= line`);
  return own.replace(line, `command=${app.command}`);
}

export function nginxTemplateText(packageRoot: string): string {
  return readFileSync(path.join(packageRoot, 'templates/nginx.conf.hbs'), 'utf8');
}

export function envExampleText(app: DetectedApp): string {
  return `# The production environment's variables: copy to .env.production (never commit it) and fill in.
# slipway reads .env.production (beside deploy.config.ts) when it deploys with --env production: the
# values are usable in deploy.config.ts (process.env.NAME) and in templates ({{env.NAME}}), are hidden
# (***) in every output, and are installed on each host as <deployTo>/shared/.env, mode 0600, linked
# into each release as .env: the app reads them from there (supervisor's environment= sets only PORT
# and NODE_ENV). A key whose name looks secret (…PASS…, …TOKEN…, …KEY…) needs 4 characters or more.
# DATABASE_URL=postgres://${app.application}:change-me@db.example.com/${app.application}
# SESSION_SECRET=change-me-to-something-long
`;
}
