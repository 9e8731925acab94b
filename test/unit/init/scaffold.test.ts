// The files init writes: the fabfile is the package's own, importing 'slipway'; the config (and its
// commented production environment, uncommented) loads as a valid config; the program runs the app's command.
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../tasks/config/load.js';
import type { DetectedApp } from '../../../tasks/init/detect.js';
import { configText, fabfileText, supervisorTemplateText } from '../../../tasks/init/scaffold.js';
import { ROOT } from '../../helpers/project.js';
import { scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('scaffold');

const shop: DetectedApp = {
  application: 'shop',
  dependencies: 'node',
  dependenciesReason: 'found package-lock.json',
  command: 'node server.js --cluster',
  commandReason: "package.json's start script",
  warnings: [],
};

describe('scaffold', () => {
  it("fabfile.ts is this repository's fabfile.ts, importing from 'slipway'", () => {
    const own = readFileSync(path.join(ROOT, 'fabfile.ts'), 'utf8');
    const text = fabfileText(ROOT);
    expect(text).toContain("} from 'slipway';");
    expect(text.slice(text.indexOf('import {'))).toBe(
      own.slice(own.indexOf('import {')).replace("from './tasks/index.js';", "from 'slipway';"),
    );
  });

  it('deploy.config.ts loads as a valid config, its local environment and its commented production one', async () => {
    const dir = freshDir();
    cpSync(path.join(ROOT, 'templates'), path.join(dir, 'templates'), { recursive: true });
    const defineConfig = JSON.stringify(path.join(ROOT, 'tasks/config/define-config.ts'));
    const text = configText(shop)
      .replace("from 'slipway'", `from ${defineConfig}`)
      .replace(/^ {4}\/\/ (production: \{| {2}.*|\},)$/gm, '    $1'); // uncomment the production block
    expect(text).toMatch(/^ {4}production: \{$/m);
    writeFileSync(path.join(dir, 'deploy.config.ts'), text);
    const local = await loadConfig({ configFile: path.join(dir, 'deploy.config.ts') });
    expect(local).toMatchObject({ application: 'shop', dependencies: { type: 'node' }, environment: 'local' });
    expect(local.hosts[0]!.deployTo).toBe(path.join(dir, '.deploy/shop')); // relative to the config's folder
    const production = await loadConfig({ configFile: path.join(dir, 'deploy.config.ts'), environment: 'production' });
    expect(production).toMatchObject({ runAs: 'deploy', serverName: 'shop.example.com' });
    expect(production.hosts[0]).toMatchObject({ host: 'web1.example.com', deployTo: '/srv/shop' });
    // setup authorizes privateKey's .pub for the deploy user: without one it refuses (exit 2).
    expect(production.hosts[0]!.privateKey).toMatch(/\/\.ssh\/id_ed25519$/);
  });

  it("the supervisor template runs the app's command; the rest is the package's template", () => {
    const own = readFileSync(path.join(ROOT, 'templates/supervisor.conf.hbs'), 'utf8');
    const text = supervisorTemplateText(ROOT, shop);
    expect(text).toMatch(/^command=node server\.js --cluster$/m);
    expect(text.replace(/^command=.*$/m, '')).toBe(own.replace(/^command=.*$/m, ''));
    expect(text).toContain('{{#if user}}\nuser={{user}}\n{{/if}}');
  });
});
