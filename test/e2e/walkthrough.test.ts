// README's "Deploy your own app" walkthrough, command for command, on a fresh server: the packed slipway
// installed into an express app's git repository (express from the npm registry), then exactly the five
// commands README lists: `npx slipway init`, the edit of deploy.config.ts (its commented production
// environment uncommented and filled in), `npx slipway setup --env production`, `npx slipway check --env
// production` (all ✓) and `npx slipway deploy --env production`; the app then answers through nginx on
// that server under its serverName.
// The fresh server is an sshd test host as setup.test.ts makes one: its own copy of /etc, an empty /home,
// /usr/local/sbin and /var/log (bind-mounted in its mount namespace only), nginx and supervisord inside that
// namespace with their include dirs removed for setup to make. What the edit fills in beyond README's
// "your host, user, deployTo, serverName" is only what differs between this host and a real one, each
// said where it is written: the host's port and key (a real one: port 22, your ~/.ssh key), the known_hosts
// file holding its key (a real one: ~/.ssh/known_hosts, after your first `ssh root@host`), the app's port
// (8080 may be taken here), nginx's listen address, and the test nginx's and supervisord's paths
// (setup.helper: a Debian host needs none).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { git, releaseIdOf, ROOT } from '../helpers/project.js';
import { type ServiceStack, startServiceStack } from '../helpers/services.js';
import { ensureDeployUser, type SshFleet, startSshHosts } from '../helpers/sshd.js';

const SERVER = `import express from 'express';
const app = express();
app.get('/', (req, res) => res.send('shop is up\\n'));
app.listen(Number(process.env.PORT ?? 8080), '127.0.0.1');
`;

describe("README's walkthrough: a newcomer's app on a fresh server in five commands", () => {
  let work: string;
  let app: string;
  let scratch: string;
  let fleet: SshFleet;
  let stack: ServiceStack;
  /** The commands typed after installing slipway, as README's walkthrough lists them. */
  const typed: string[] = [];

  const env = { ...process.env, CI: 'true', NO_COLOR: '1', npm_config_loglevel: 'error', npm_config_fund: 'false' };
  const npx = (...args: string[]) => {
    typed.push(['npx', ...args].join(' '));
    const result = spawnSync('npx', args, { cwd: app, env, encoding: 'utf8' });
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
  };
  const configFile = () => path.join(app, 'deploy.config.ts');

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'slipway-walkthrough-'));
    // The newcomer's app: an express server, its code committed.
    app = path.join(work, 'my-shop');
    mkdirSync(app);
    const pkg = { name: 'my-shop', version: '1.0.0', type: 'module', scripts: { start: 'node server.js' } };
    writeFileSync(path.join(app, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
    writeFileSync(path.join(app, 'server.js'), SERVER);
    writeFileSync(path.join(app, '.gitignore'), 'node_modules/\n.deploy/\n.env.production\n');
    const npm = (...args: string[]) =>
      execFileSync('npm', [...args, '--prefer-offline', '--no-audit'], { cwd: app, env, stdio: 'pipe' });
    npm('install', 'express@4');
    git(app, 'init', '-q', '-b', 'main');
    git(app, 'add', '-A');
    git(app, 'commit', '-qm', 'the app');
    // README's install line, with the tarball `npm pack` makes (prepare builds dist/).
    const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', work], { cwd: ROOT, env });
    npm('install', '--save-dev', path.join(work, packed.toString().trim().split('\n').pop()!));

    // The fresh server.
    scratch = mkdtempSync(path.join(tmpdir(), 'slipway-walkthrough-host-'));
    ensureDeployUser('/bin/sh'); // the harness's user, before /etc is copied (as in setup.test.ts)
    const etc = path.join(scratch, 'etc');
    execFileSync('cp', ['-a', '/etc', etc]);
    rmSync(path.join(etc, 'slipway'), { recursive: true, force: true });
    const dirs = Object.fromEntries(
      ['/home', '/usr/local/sbin', '/var/log'].map((d) => [d, path.join(scratch, d.replaceAll('/', '_'))]),
    );
    for (const d of Object.values(dirs)) mkdirSync(d, { mode: 0o755 });
    fleet = await startSshHosts(1, { privateDirs: { '/etc': etc, ...dirs }, userAuthorizedKeys: true });
    stack = await startServiceStack({ mountNamespaceOf: fleet.hosts[0].pid });
    for (const d of [stack.sitesAvailable, stack.sitesEnabled, stack.supervisorConfD]) rmSync(d, { recursive: true });
  }, 600_000);

  afterAll(async () => {
    await stack?.stop();
    await fleet?.stop();
    for (const d of [work, scratch]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('1. npx slipway init: the scaffold, with a commented production environment', () => {
    const result = npx('slipway', 'init');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('wrote deploy.config.ts');
    expect(readFileSync(configFile(), 'utf8')).toMatch(/^ {4}\/\/ production: \{$/m);
  }, 120_000);

  it('2. $EDITOR deploy.config.ts: production uncommented, its host, user, deployTo and serverName filled in', () => {
    typed.push('$EDITOR deploy.config.ts');
    const h = fleet.hosts[0];
    const lines = readFileSync(configFile(), 'utf8').split('\n');
    const from = lines.indexOf('    // production: {');
    const to = lines.indexOf('    // },', from);
    expect(from).toBeGreaterThan(0);
    expect(to).toBeGreaterThan(from);
    // Uncommented as an editor would: the leading `// ` of each line of the block goes.
    for (let i = from; i <= to; i++) lines[i] = lines[i].replace(/^( *)\/\/ /, '$1');
    const edited = lines
      .join('\n')
      // The host and your key (README: "your host, user, deployTo, serverName, your key": user, deployTo and
      // serverName as init wrote them); its port is what a real server on port 22 needs not say.
      .replace("host: 'web1.example.com'", `host: '${h.address}', port: ${h.port}`)
      .replace("privateKey: '~/.ssh/id_ed25519'", `privateKey: '${fleet.clientKey}'`)
      // This test only: the host's key is in the harness's known_hosts (yours: ~/.ssh/known_hosts), the app
      // and nginx on free ports, and the test nginx's and supervisord's paths (a Debian host needs none).
      .replace(
        '    production: {\n',
        [
          '    production: {',
          `      knownHosts: '${fleet.knownHosts}',`,
          `      port: ${stack.appPort},`,
          `      setup: { helper: ${JSON.stringify({
            site: path.join(stack.sitesAvailable, 'my-shop.conf'),
            enabled: path.join(stack.sitesEnabled, 'my-shop.conf'),
            programFile: path.join(stack.supervisorConfD, 'my-shop.conf'),
            supervisorctl: stack.supervisorctl,
            nginxTest: stack.nginxTest,
            nginxReload: stack.nginxReload,
          })} },`,
          '',
        ].join('\n'),
      )
      .replace('vars: { logDir:', `vars: { listen: '127.0.0.1:${stack.nginxPort}', logDir:`)
      .replace("url: 'http://127.0.0.1:8080/'", `url: 'http://127.0.0.1:${stack.appPort}/'`);
    writeFileSync(configFile(), edited);
    expect(edited).not.toMatch(/^ *\/\/ +(production|hosts|serverName|runAs|services|vars|healthcheck)\b/m);
    expect(edited).toContain(`host: '${h.address}'`);
    expect(edited).toContain(`privateKey: '${fleet.clientKey}'`);
    expect(edited).toContain(`listen: '127.0.0.1:${stack.nginxPort}'`);
  });

  it('3. npx slipway setup --env production: the deploy user, its key, the helper and its sudo rule', () => {
    const result = npx('slipway', 'setup', '--env', 'production');
    expect(result.code, result.stderr + result.stdout).toBe(0);
    for (const change of ['user deploy created', 'deploy root /srv/my-shop created', 'sudo rule'])
      expect(result.stdout).toContain(`changed: ${change}`);
    // The deploy user's own authorized_keys on the host (its /home), holding the key README's default names.
    const keys = path.join(scratch, '_home/deploy/.ssh/authorized_keys');
    expect(readFileSync(keys, 'utf8')).toContain(readFileSync(`${fleet.clientKey}.pub`, 'utf8').trim());
  }, 180_000);

  it('4. npx slipway check --env production: every verdict ✓ (or · where nothing applies)', () => {
    const result = npx('slipway', 'check', '--env', 'production');
    expect(result.code, result.stderr + result.stdout).toBe(0);
    for (const name of ['ssh', 'deploy root', 'lock', 'runtime', 'sudo rule', 'nginx -t', 'supervisorctl status'])
      expect(result.stdout).toMatch(new RegExp(`^✓ web1 +${name} `, 'm'));
    expect(result.stdout).toMatch(/^✓ web1 +health check URL /m);
    // init's .env.production.example lists no keys (all commented out): no .env.production is expected yet.
    expect(result.stdout).toMatch(/^· web1 +\.env file +no \.env\.production \(none expected: .*lists no keys\)/m);
    expect(result.stdout).not.toMatch(/^✗/m);
  }, 180_000);

  it('5. npx slipway deploy --env production: the app answers through nginx under its serverName', async () => {
    const result = npx('slipway', 'deploy', '--env', 'production');
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const id = releaseIdOf(result.stdout);
    const current = path.join(fleet.hosts[0].srvDir, 'my-shop/current');
    expect(JSON.parse(readFileSync(path.join(current, '.slipway/release.json'), 'utf8')).id).toBe(id);
    expect(existsSync(path.join(current, 'node_modules/express/package.json'))).toBe(true);
    expect(await getThroughNginx(stack.nginxPort, 'my-shop.example.com')).toEqual({
      status: 200,
      body: 'shop is up\n',
    });
    // …and that took README's five commands after installing slipway, in its order.
    expect(typed).toEqual([
      'npx slipway init',
      '$EDITOR deploy.config.ts',
      'npx slipway setup --env production',
      'npx slipway check --env production',
      'npx slipway deploy --env production',
    ]);
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const walkthrough = readme.slice(readme.indexOf('## Deploy your own app'));
    const block = walkthrough.slice(walkthrough.indexOf('```sh'), walkthrough.indexOf('```\n', 6));
    const numbered = block
      .split('\n')
      .filter((l) => /# [1-5]\. /.test(l))
      .map((l) => l.replace(/ +#.*$/, ''));
    expect(numbered).toEqual(typed);
  }, 300_000);
});

/** GET / through nginx with `Host: <serverName>`, until the site answers (nginx reloads asynchronously). */
async function getThroughNginx(port: number, serverName: string): Promise<{ status: number; body: string }> {
  let last = { status: 0, body: '' };
  for (let i = 0; i < 50; i++) {
    last = await new Promise((resolve) => {
      http
        .get({ host: '127.0.0.1', port, path: '/', headers: { Host: serverName } }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', (e) => resolve({ status: 0, body: String(e) }));
    });
    if (last.status === 200) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  return last;
}
