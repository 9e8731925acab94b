// Benchmark (not a test): slipway against Capistrano 3 and Shipit on the same real sshd hosts and the
// same app (the sample app in a bare git repository, with a second commit for a new ref). Tools run
// interleaved (A B C A B C …) so drift hits all alike. Installs the peers itself (Debian's capistrano,
// npm's shipit-cli + shipit-deploy), prints a table and writes bench/RESULTS.md. slipway runs through each
// entry: `npx tsx fabfile.ts`, `node fabfile.mjs` (npm run build), and `npx slipway` (the packed package
// installed into an app folder, its cached bundle).
//   npx tsx bench/peers.ts [runs=5]
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type SshFleet, startCuttingRelay, startSshHosts, type TestHost } from '../test/helpers/sshd.js';
import { mustTime, mustTimeCpu, summary } from './measure.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const runs = Number(process.argv[2] ?? 5);
// The client CPU time (user + system of the tool and its children) of the last tool command timed.
let lastCpu = Number.NaN;
const timed = (...args: Parameters<typeof mustTimeCpu>) =>
  mustTimeCpu(...args).then(({ ms, cpu }) => {
    lastCpu = cpu;
    return ms;
  });
const sh = (cmd: string, cwd?: string) =>
  execFileSync('bash', ['-c', cmd], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });

function installPeers(work: string) {
  if (spawnSync('cap', ['--version']).status !== 0) {
    sh(
      'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ' +
        'capistrano ruby-ed25519 ruby-bcrypt-pbkdf rsync >/dev/null',
    );
  }
  mkdirSync(path.join(work, 'shipit'), { recursive: true });
  writeFileSync(path.join(work, 'shipit/package.json'), JSON.stringify({ name: 'shipit-bench', private: true }));
  sh(
    'npm install --no-audit --no-fund --loglevel=error shipit-cli@5 shipit-deploy@5 >/dev/null',
    path.join(work, 'shipit'),
  );
}

/** slipway packed (npm pack) and installed into an app folder, with the fabfile `npx slipway init` writes. */
function installSlipway(work: string): string {
  const app = path.join(work, 'npx-app');
  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'npx-app', private: true }));
  const tarball = sh(`npm pack --silent --pack-destination ${work}`, ROOT).trim().split('\n').pop()!;
  sh(`npm install --prefer-offline --no-audit --no-fund --loglevel=error --save-dev ${path.join(work, tarball)}`, app);
  sh('npx slipway init >/dev/null', app);
  sh('npx slipway --list >/dev/null 2>&1', app); // the first run bundles fabfile.ts; the runs measured use that
  // npx's own start-up, the floor under `npx slipway`: a local bin that does nothing.
  writeFileSync(path.join(app, 'node_modules/.bin/empty-bin'), '#!/usr/bin/env node\n', { mode: 0o755 });
  return app;
}

/** The sample app in a bare repository: ref `main`, and `next` one commit later (same lockfile). */
function makeRepository(work: string): string {
  const src = path.join(work, 'src');
  mkdirSync(src);
  for (const f of ['server.js', 'package.json', 'package-lock.json'])
    cpSync(path.join(ROOT, 'examples/hello', f), path.join(src, f));
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@example.com', ...args], { cwd: src });
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-qm', 'first');
  writeFileSync(path.join(src, 'CHANGES'), 'second commit\n');
  git('checkout', '-q', '-b', 'next');
  git('add', '-A');
  git('commit', '-qm', 'second');
  const bare = path.join(work, 'app.git');
  execFileSync('git', ['clone', '-q', '--bare', src, bare]);
  // Capistrano clones it on the host as the deploy user, whom git would refuse a repository owned by root.
  writeFileSync('/home/slipway/.gitconfig', `[safe]\n\tdirectory = ${bare}\n`);
  return bare;
}

interface Tool {
  name: string;
  root: string; // deploy root on the hosts
  deploy(target: 'one' | 'ten', ref: string): Promise<number>;
  rollback(target: 'one' | 'ten'): Promise<number>;
}

function tools(work: string, fleet: SshFleet, relayPort: number, bare: string): Tool[] {
  const key = fleet.clientKey;
  const knownHosts = path.join(work, 'known_hosts');
  const one = [{ address: '127.0.0.1', port: relayPort }];
  const ten = fleet.hosts.map((h) => ({ address: h.address, port: h.port }));
  // Everyone's ssh (Shipit's ssh and rsync, Capistrano's net-ssh via its options) uses these keys and known_hosts.
  const home = path.join(work, 'home');
  mkdirSync(path.join(home, '.ssh'), { recursive: true });
  writeFileSync(
    path.join(home, '.ssh/config'),
    `Host *\n  User slipway\n  IdentityFile ${key}\n` +
      `  UserKnownHostsFile ${knownHosts}\n  StrictHostKeyChecking yes\n  BatchMode yes\n`,
  );
  const env = { HOME: home };

  // slipway
  // A deploy.config.ts, as slipway's README sets it up (the prebuilt entry compiles it on each run).
  const slipwayConfig = (hosts: Array<{ address: string; port: number }>, keepConnections = 0) => {
    const file = path.join(work, `slipway-${hosts.length}-${keepConnections}`, 'deploy.config.ts');
    mkdirSync(path.dirname(file), { recursive: true });
    const deployTo = keepConnections ? '/srv/slipway-kept' : '/srv/slipway';
    const config = {
      application: 'hello',
      repository: bare,
      keepReleases: 5,
      dependencies: { type: 'node' },
      shared: { dirs: ['logs'] },
      knownHosts,
      keepConnections,
      environments: {
        bench: {
          hosts: hosts.map((h, i) => ({
            name: `web${i + 1}`,
            host: h.address,
            port: h.port,
            user: 'slipway',
            privateKey: key,
            deployTo,
          })),
        },
      },
    };
    const defineConfig = JSON.stringify(path.join(ROOT, 'tasks/config/define-config.ts'));
    writeFileSync(
      file,
      `import { defineConfig } from ${defineConfig};\n\n` +
        `export default defineConfig(${JSON.stringify(config, null, 2)});\n`,
    );
    return file;
  };
  const slipwayFiles = { one: slipwayConfig(one), ten: slipwayConfig(ten) };
  const keptFiles = { one: slipwayConfig(one, 60), ten: slipwayConfig(ten, 60) };
  const slipway = (target: 'one' | 'ten', args: string[]) =>
    timed(
      `slipway ${args.join(' ')}`,
      'npx',
      ['tsx', 'fabfile.ts', '--config', slipwayFiles[target], '--env', 'bench', ...args],
      { cwd: ROOT, env },
    );
  // The prebuilt entry (`npm run build`): the same tasks without tsx's start-up.
  const slipwayMjs = (target: 'one' | 'ten', args: string[], files = slipwayFiles) =>
    timed(
      `slipway ${args.join(' ')}`,
      process.execPath,
      ['fabfile.mjs', '--config', files[target], '--env', 'bench', ...args],
      { cwd: ROOT, env },
    );

  // `npx slipway`, as an app uses it (README "Deploy your own app"): the packed slipway installed into an
  // app folder, its fabfile.ts written by `npx slipway init`, a config per target importing 'slipway'.
  const npxApp = installSlipway(work);
  const npxConfig = (hosts: Array<{ address: string; port: number }>) => {
    const file = path.join(npxApp, `bench-${hosts.length}`, 'deploy.config.ts');
    mkdirSync(path.dirname(file));
    const text = readFileSync(slipwayConfig(hosts), 'utf8')
      .replace(/^import \{ defineConfig \} from .*$/m, "import { defineConfig } from 'slipway';")
      .replaceAll('/srv/slipway', '/srv/slipway-npx');
    writeFileSync(file, text);
    return file;
  };
  const npxFiles = { one: npxConfig(one), ten: npxConfig(ten) };
  const slipwayNpx = (target: 'one' | 'ten', args: string[]) =>
    timed(
      `npx slipway ${args.join(' ')}`,
      'npx',
      ['slipway', '--config', npxFiles[target], '--env', 'bench', ...args],
      {
        cwd: npxApp,
        env,
      },
    );

  // Capistrano, as its docs set it up: Capfile, config/deploy.rb, one file per stage.
  const cap = path.join(work, 'cap');
  mkdirSync(path.join(cap, 'config/deploy'), { recursive: true });
  writeFileSync(
    path.join(cap, 'Capfile'),
    'require "capistrano/setup"\nrequire "capistrano/deploy"\n' +
      'require "capistrano/scm/git"\ninstall_plugin Capistrano::SCM::Git\n',
  );
  writeFileSync(
    path.join(cap, 'config/deploy.rb'),
    `lock "~> 3.17"
set :application, "hello"
set :repo_url, ${JSON.stringify(bare)}
set :branch, ENV.fetch("REF", "main")
set :deploy_to, "/srv/cap"
set :keep_releases, 5
append :linked_dirs, "logs"
set :ssh_options, {
  keys: [${JSON.stringify(key)}],
  user_known_hosts_file: ${JSON.stringify(knownHosts)},
  verify_host_key: :always,
  auth_methods: ["publickey"],
}
namespace :deploy do
  task :npm_ci do
    on roles(:app) do
      within release_path do
        execute :npm, "ci", "--omit=dev"
      end
    end
  end
  after :updated, :npm_ci
end
`,
  );
  const stage = (hosts: Array<{ address: string; port: number }>) =>
    hosts.map((h) => `server "${h.address}", port: ${h.port}, user: "slipway", roles: %w[app]\n`).join('');
  writeFileSync(path.join(cap, 'config/deploy/one.rb'), stage(one));
  writeFileSync(path.join(cap, 'config/deploy/ten.rb'), stage(ten));
  const capistrano = (target: string, task: string, ref = 'main') =>
    timed(`cap ${target} ${task}`, 'cap', [target, task], { cwd: cap, env: { ...env, REF: ref } });

  // Shipit, as its docs set it up: shipitfile.js with shipit-deploy, npm ci after the update.
  const shipitDir = path.join(work, 'shipit');
  // ssh reads ~/.ssh/config from the passwd home, not $HOME: Shipit gets the known_hosts as an ssh option.
  const servers = (hosts: Array<{ address: string; port: number }>) =>
    hosts.map((h) => ({
      user: 'slipway',
      host: h.address,
      port: h.port,
      extraSshOptions: { UserKnownHostsFile: knownHosts, StrictHostKeyChecking: 'yes' },
    }));
  writeFileSync(
    path.join(shipitDir, 'shipitfile.js'),
    `module.exports = (shipit) => {
  require('shipit-deploy')(shipit);
  shipit.initConfig({
    default: {
      workspace: ${JSON.stringify(path.join(work, 'shipit-workspace'))},
      deployTo: '/srv/shipit',
      repositoryUrl: ${JSON.stringify(bare)},
      branch: process.env.REF || 'main',
      keepReleases: 5,
      shallowClone: true,
      key: ${JSON.stringify(key)},
    },
    one: { servers: ${JSON.stringify(servers(one))} },
    ten: { servers: ${JSON.stringify(servers(ten))} },
  });
  shipit.on('updated', () =>
    shipit.remote(\`cd \${shipit.releasePath} &&
      npm ci --omit=dev &&
      mkdir -p \${shipit.config.deployTo}/shared/logs &&
      ln -sfn ../../shared/logs logs\`),
  );
};
`,
  );
  const shipit = (target: string, task: string, ref = 'main') =>
    timed(`shipit ${target} ${task}`, path.join(shipitDir, 'node_modules/.bin/shipit'), [target, task], {
      cwd: shipitDir,
      env: { ...env, REF: ref },
    });

  return [
    {
      name: 'slipway (npx tsx fabfile.ts)',
      root: 'slipway',
      deploy: (t, ref) => slipway(t, ['--ref', ref, 'deploy']),
      rollback: (t) => slipway(t, ['rollback']),
    },
    {
      name: 'slipway (node fabfile.mjs)',
      root: 'slipway',
      deploy: (t, ref) => slipwayMjs(t, ['--ref', ref, 'deploy']),
      rollback: (t) => slipwayMjs(t, ['rollback']),
    },
    // keepConnections: the connections of one run are kept for the next (its broker starts on the first run).
    {
      name: 'slipway (node fabfile.mjs, keepConnections: 60)',
      root: 'slipway-kept',
      deploy: (t, ref) => slipwayMjs(t, ['--ref', ref, 'deploy'], keptFiles),
      rollback: (t) => slipwayMjs(t, ['rollback'], keptFiles),
    },
    {
      name: 'slipway (npx slipway)',
      root: 'slipway-npx',
      deploy: (t, ref) => slipwayNpx(t, ['--ref', ref, 'deploy']),
      rollback: (t) => slipwayNpx(t, ['rollback']),
    },
    {
      name: 'Capistrano',
      root: 'cap',
      deploy: (t, ref) => capistrano(t, 'deploy', ref),
      rollback: (t) => capistrano(t, 'deploy:rollback'),
    },
    {
      name: 'Shipit',
      root: 'shipit',
      deploy: (t, ref) => shipit(t, 'deploy', ref),
      rollback: (t) => shipit(t, 'rollback'),
    },
  ];
}

const fleet = await startSshHosts(10);
const work = mkdtempSync(path.join(os.tmpdir(), 'slipway-peers-'));
chmodSync(work, 0o755); // the hosts' deploy user reads the bare repository (Capistrano clones it on the host)
const web1 = fleet.hosts[0];
const relay = await startCuttingRelay({ address: web1.address, port: web1.port }, Infinity);
try {
  installPeers(work);
  const bare = makeRepository(work);
  writeFileSync(
    path.join(work, 'known_hosts'),
    `${readFileSync(fleet.knownHosts, 'utf8')}[127.0.0.1]:${relay.port} ${readFileSync(`${web1.hostKey}.pub`, 'utf8')}`,
  );
  const all = tools(work, fleet, relay.port, bare);
  const fresh = (tool: Tool, hosts: TestHost[]) =>
    hosts.forEach((h) => {
      rmSync(path.join(h.srvDir, tool.root), { recursive: true, force: true });
    });
  const sshTrue = (h: { address: string; port: number }) =>
    mustTime('ssh true', 'ssh', [
      '-i',
      fleet.clientKey,
      '-o',
      `UserKnownHostsFile=${path.join(work, 'known_hosts')}`,
      '-o',
      'BatchMode=yes',
      '-p',
      String(h.port),
      `slipway@${h.address}`,
      'true',
    ]);

  type Row = { times: number[]; cpu: number[]; connections: number[]; execs: number[]; bytes: number[] };
  const table = new Map<string, Map<string, Row>>();
  const failures = new Map<string, number>();
  const record = (
    scenario: string,
    tool: string,
    ms: number,
    counts?: { connections: number; execRequests: number; subsystemRequests: number },
    bytes?: number,
    cpu?: number,
  ) => {
    const rows = table.get(scenario) ?? new Map<string, Row>();
    table.set(scenario, rows);
    const row = rows.get(tool) ?? { times: [], cpu: [], connections: [], execs: [], bytes: [] };
    rows.set(tool, row);
    row.times.push(ms);
    if (cpu !== undefined && !Number.isNaN(cpu)) row.cpu.push(cpu);
    if (counts) {
      row.connections.push(counts.connections);
      row.execs.push(counts.execRequests + counts.subsystemRequests);
    }
    if (bytes !== undefined) row.bytes.push(bytes);
  };
  const measure = async (scenario: string, tool: Tool, run: () => Promise<number>) => {
    fleet.resetCounts(web1);
    const before = relay.bytesSent();
    lastCpu = Number.NaN;
    let ms: number;
    try {
      ms = await run();
    } catch (error) {
      // One failed run is reported (and counted in the table), not the end of the whole bench.
      failures.set(`${scenario}|${tool.name}`, (failures.get(`${scenario}|${tool.name}`) ?? 0) + 1);
      process.stderr.write(`${scenario} ${tool.name} FAILED: ${(error as Error).message.slice(-600)}\n`);
      return;
    }
    const bytes = relay.bytesSent() - before; // only the 1-host scenarios go through the counting relay
    record(scenario, tool.name, ms, fleet.counts(web1), scenario.includes('10 hosts') ? undefined : bytes, lastCpu);
    process.stderr.write(
      `${scenario} ${tool.name} ${(ms / 1000).toFixed(2)} s (CPU ${(lastCpu / 1000).toFixed(2)} s)\n`,
    );
  };

  // Start-up and the floor, beside them.
  writeFileSync(path.join(work, 'empty.ts'), '');
  writeFileSync(path.join(work, 'empty.mjs'), '');
  sh('npm run --silent build', ROOT);
  for (let i = 0; i < runs; i++) {
    record(
      'npx tsx <empty file>',
      'floor',
      await mustTime('empty', 'npx', ['tsx', path.join(work, 'empty.ts')], { cwd: ROOT }),
    );
    record(
      'npx tsx fabfile.ts --list',
      'slipway',
      await mustTime('list', 'npx', ['tsx', 'fabfile.ts', '--list'], { cwd: ROOT }),
    );
    const npxEmpty = await mustTimeCpu('empty', 'npx', ['empty-bin'], { cwd: path.join(work, 'npx-app') });
    record('npx <empty local bin>', 'floor', npxEmpty.ms, undefined, undefined, npxEmpty.cpu);
    const npxList = await mustTimeCpu('list', 'npx', ['slipway', '--list'], { cwd: path.join(work, 'npx-app') });
    record('npx slipway --list', 'slipway', npxList.ms, undefined, undefined, npxList.cpu);
    record(
      'node <empty file>',
      'floor',
      await mustTime('empty', process.execPath, [path.join(work, 'empty.mjs')], { cwd: ROOT }),
    );
    record(
      'node fabfile.mjs --list',
      'slipway',
      await mustTime('list', process.execPath, ['fabfile.mjs', '--list'], { cwd: ROOT }),
    );
    record('ssh host true (1 host)', 'floor', await sshTrue({ address: '127.0.0.1', port: relay.port }));
    const start = performance.now();
    await Promise.all(fleet.hosts.map((h) => sshTrue(h)));
    record('ssh host true (10 hosts in parallel)', 'floor', performance.now() - start);
  }

  for (let i = 0; i < runs; i++) {
    for (const tool of all) {
      fresh(tool, [web1]);
      await measure('first deploy, 1 host', tool, () => tool.deploy('one', 'main'));
      await measure('warm redeploy, 1 host', tool, () => tool.deploy('one', 'main'));
      await measure('new ref, 1 host', tool, () => tool.deploy('one', 'next'));
      await measure('rollback, 1 host', tool, () => tool.rollback('one'));
    }
  }
  for (const tool of all) {
    fresh(tool, fleet.hosts); // Shipit refuses hosts whose releases differ
    await tool.deploy('ten', 'main'); // warm every host
  }
  for (let i = 0; i < runs; i++) {
    for (const tool of all) {
      await measure('warm redeploy, 10 hosts', tool, () => tool.deploy('ten', 'main'));
      await measure('rollback, 10 hosts', tool, () => tool.rollback('ten'));
    }
  }

  const shipitVersion = JSON.parse(
    readFileSync(path.join(work, 'shipit/node_modules/shipit-cli/package.json'), 'utf8'),
  ).version;
  const machine = [
    new Date().toISOString().slice(0, 10),
    `${os.cpus().length} × ${os.cpus()[0].model}`,
    `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    `Node ${process.version}`,
    sh('cap --version').split('\n')[0],
    `shipit-cli ${shipitVersion}`,
    `OpenSSH ${spawnSync('ssh', ['-V'], { encoding: 'utf8' }).stderr.trim()}`,
  ];
  const lines = [
    `# slipway vs Capistrano vs Shipit`,
    '',
    machine.join(' · '),
    '',
    'Real sshd hosts on loopback (harness of test/helpers/sshd.ts), the sample app from a bare git repository, ' +
      `${runs} runs per cell, tools interleaved. Wall time median (min–max); client CPU: the median user + system ` +
      "time of the command and its children (GNU time; not the hosts' sshd side); connections and exec+subsystem " +
      "requests seen by host 1's sshd; bytes the client sent to host 1 (counted by a relay in front of it, so " +
      'for the 1-host scenarios only). slipway reads a deploy.config.ts, as its README sets it up.',
    '',
    '| scenario | tool | time | client CPU | connections | exec requests | bytes sent |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const [scenario, rows] of table) {
    for (const [tool, row] of rows) {
      const med = (xs: number[]) => (xs.length ? String(Math.round(summary(xs).median)) : '');
      lines.push(
        `| ${scenario} | ${tool} | ${summary(row.times).text}` +
          `${failures.has(`${scenario}|${tool}`) ? `, ${failures.get(`${scenario}|${tool}`)} failed` : ''} | ` +
          `${row.cpu.length ? `${(summary(row.cpu).median / 1000).toFixed(2)} s` : ''} | ` +
          `${med(row.connections)} | ${med(row.execs)} | ${med(row.bytes)} |`,
      );
    }
  }
  const text = `${lines.join('\n')}\n`;
  writeFileSync(path.join(ROOT, 'bench/RESULTS.md'), text);
  console.log(text);
} finally {
  await relay.stop();
  await fleet.stop();
  rmSync(work, { recursive: true, force: true });
}
