// Secrets from .env files on the local target: usable in templates, hooks and the config, never
// shown in any output (text, --json, --dry-run's commands, errors) or in revisions.log.
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type Project, releaseIdOf } from '../helpers/project.js';

describe('secrets from .env', () => {
  const secret = 's3cr3t-planted-value';
  const envSecret = 'db-pa55word-planted';
  let project: Project;
  beforeAll(() => {
    project = makeProject({ format: 'ts' });
    writeFileSync(path.join(project.dir, '.env'), `API_TOKEN=${secret}\n`);
    writeFileSync(path.join(project.dir, '.env.local'), `DB_PASSWORD=${envSecret}\n`);
    writeFileSync(path.join(project.dir, 'templates/secret.conf.hbs'), 'token={{env.API_TOKEN}}\n');
  });
  afterAll(() => project?.cleanup());
  /** The output lines that show a secret (or a recognisable piece of one). */
  const leaks = (text: string, pieces = [secret, envSecret]) =>
    text.split('\n').filter((line) => pieces.some((p) => line.includes(p)));

  it('never appear in stdout/stderr, --json output or revisions.log, though templates and hooks use them', async () => {
    project.writeConfig({ hooks: { beforeSwitch: [{ name: 'show', commands: ['echo "hook sees $API_TOKEN"'] }] } });
    const runs = {
      // Before any deploy: the rendered files go on stdin, and --dry-run shows them.
      firstDry: await project.run(['--dry-run', 'deploy']),
      deploy: await project.run(['deploy']),
      json: await project.run(['--json', 'deploy']),
      dry: await project.run(['--dry-run', 'deploy']),
      dryJson: await project.run(['--json', '--dry-run', 'deploy']),
      releases: await project.run(['--json', 'releases']),
      rollback: await project.run(['rollback']),
      check: await project.run(['check']),
    };
    project.writeConfig();
    for (const [name, r] of Object.entries(runs)) {
      expect(r.code, `${name}: ${r.stderr}`).toBe(0);
      expect(leaks(r.stdout + r.stderr), name).toEqual([]);
    }
    expect(JSON.parse(runs.json.stdout).ok).toBe(true);
    // The values were really there, and were redacted where they would have shown.
    expect(runs.deploy.stdout).toContain('hook sees ***');
    // A first deploy sends the rendered files, the secret in them redacted where --dry-run shows them.
    expect(runs.firstDry.stdout).toMatch(/secret\.conf:\n\s+local\s+token=\*\*\*/);
    // A redeploy: the delta from the live release (delta.test.ts); the rendered files, unchanged, are the live
    // release's, copied on the host: none is sent.
    expect(runs.dry.stdout).toMatch(/with on stdin: the delta from \S+ \(\d+ bytes\)/);
    expect(runs.dry.stdout).toContain(
      "(nginx.conf, secret.conf, supervisor.conf: the live release's, copied on the host)",
    );
    const live = project.live()!;
    expect(readFileSync(path.join(project.deployTo, 'releases', live, '.slipway/secret.conf'), 'utf8')).toBe(
      `token=${secret}\n`,
    );
    // A rendered file that holds a secret is private; one that does not is not.
    expect(statSync(path.join(project.deployTo, 'releases', live, '.slipway/secret.conf')).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(project.deployTo, 'releases', live, '.slipway/nginx.conf')).mode & 0o777).toBe(0o644);
    expect(leaks(readFileSync(path.join(project.deployTo, 'revisions.log'), 'utf8'))).toEqual([]);
    // .env.<environment> is installed as shared/.env, private, and linked into the release.
    expect(statSync(path.join(project.deployTo, 'shared/.env')).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(project.deployTo, 'shared/.env'), 'utf8')).toContain(envSecret);
    expect(readFileSync(path.join(project.deployTo, 'releases', live, '.env'), 'utf8')).toContain(envSecret);
  });

  it('a failing hook that prints a secret: the error and the --json error show *** instead', async () => {
    project.writeConfig({
      hooks: { beforeSwitch: [{ name: 'leaky', commands: ['echo "failing with $API_TOKEN" >&2', 'exit 3'] }] },
    });
    try {
      const text = await project.run(['deploy']);
      expect(text.code).toBe(1);
      expect(text.stderr).toContain('failing with ***');
      expect(leaks(text.stdout + text.stderr)).toEqual([]);
      const json = await project.run(['--json', 'deploy']);
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stdout).error).toContain('failing with ***');
      expect(leaks(json.stdout + json.stderr)).toEqual([]);
    } finally {
      project.writeConfig();
    }
  });

  it(
    '.env.<environment> values are usable in the config as process.env.X (README), ' +
      'with the default environment too',
    async () => {
      // A hand-written deploy.config.ts that reads the value the way the README shows.
      const config = readFileSync(project.configFile, 'utf8');
      writeFileSync(
        project.configFile,
        config.replace(
          '"application": "hello",',
          '"application": "hello",\n  vars: { dbPassword: process.env.DB_PASSWORD ?? "(unset)" },',
        ),
      );
      writeFileSync(path.join(project.dir, 'templates/db.conf.hbs'), 'db={{dbPassword}}\n');
      try {
        for (const args of [['--env', 'local', 'deploy'], ['deploy']]) {
          const result = await project.run(args);
          expect(result.code, result.stderr).toBe(0);
          expect(leaks(result.stdout + result.stderr)).toEqual([]);
          expect(readFileSync(path.join(project.deployTo, 'current/.slipway/db.conf'), 'utf8'), args.join(' ')).toBe(
            `db=${envSecret}\n`,
          );
        }
      } finally {
        writeFileSync(project.configFile, config);
        rmSync(path.join(project.dir, 'templates/db.conf.hbs'));
      }
    },
  );

  it("a secret with a quote in it is redacted from --dry-run's commands too", async () => {
    const quoted = "it's-a-pl4nted-s3cret";
    writeFileSync(path.join(project.dir, '.env'), `API_TOKEN="${quoted}"\n`);
    try {
      const dry = await project.run(['--dry-run', 'deploy']);
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout).toContain('/.slipway/secret.conf'); // the rendered template is in the printed commands
      // The command shows the value shell-quoted (it'\''s-a-...): redacting only the raw text misses it.
      expect(leaks(dry.stdout + dry.stderr, ['pl4nted-s3cret'])).toEqual([]);
    } finally {
      writeFileSync(path.join(project.dir, '.env'), `API_TOKEN=${secret}\n`);
    }
  });

  it(
    "a secret in a longer string, URL-encoded, a URL's password, " +
      'and each line of a multi-line (PEM) secret are redacted in --dry-run and hook output',
    async () => {
      const pem =
        '-----BEGIN PRIVATE KEY-----\nMIIEvQplantedPEMline1AAAA\nBBBBplantedPEMline2BBBB\n-----END PRIVATE KEY-----';
      const password = 'p@ss/w0rd-planted';
      const urlPassword = 'url-pa55-planted';
      writeFileSync(
        path.join(project.dir, '.env'),
        [
          `API_TOKEN=${secret}`,
          `PEM="${pem.replace(/\n/g, '\\n')}"`,
          `DB_PASSWORD=${password}`,
          `DATABASE_URL=postgres://app:${urlPassword}@db/app`,
          '',
        ].join('\n'),
      );
      const config = readFileSync(project.configFile, 'utf8');
      writeFileSync(
        project.configFile,
        config.replace(
          '"application": "hello",',
          '"application": "hello",\n' +
            '  vars: {\n' +
            '    dbUrl: `postgres://app:${encodeURIComponent(process.env.DB_PASSWORD!)}@db/app`,\n' +
            '    dbPassword: new URL(process.env.DATABASE_URL!).password,\n' +
            '  },',
        ),
      );
      writeFileSync(
        path.join(project.dir, 'templates/db.conf.hbs'),
        'url={{dbUrl}}\npassword={{dbPassword}}\nkey={{env.PEM}}\n',
      );
      // Only the JSON-encoded form of the key: not the raw value, still a secret.
      writeFileSync(path.join(project.dir, 'templates/key.json.hbs'), '{ "key": {{json env.PEM}} }\n');
      const pieces = ['plantedPEMline', 'p%40ss', 'w0rd-planted', urlPassword];
      try {
        const dry = await project.run(['--dry-run', 'deploy']);
        expect(dry.code, dry.stderr).toBe(0);
        expect(dry.stdout).toContain('url=postgres://app:***@db/app');
        expect(leaks(dry.stdout + dry.stderr, pieces)).toEqual([]);
        project.writeConfig({ hooks: { beforeSwitch: [{ name: 'show', commands: ['cat .slipway/db.conf'] }] } });
        writeFileSync(
          project.configFile,
          readFileSync(project.configFile, 'utf8').replace(
            '"application": "hello",',
            '"application": "hello",\n  vars: { dbUrl: "x", dbPassword: process.env.DB_PASSWORD! },',
          ),
        );
        const deploy = await project.run(['deploy']);
        expect(deploy.code, deploy.stderr).toBe(0);
        expect(deploy.stdout).toContain('key=***');
        expect(leaks(deploy.stdout + deploy.stderr, pieces)).toEqual([]);
        const live = path.join(project.deployTo, 'releases', project.live()!, '.slipway');
        expect(readFileSync(path.join(live, 'key.json'), 'utf8')).toContain(JSON.stringify(pem));
        expect(statSync(path.join(live, 'key.json')).mode & 0o777).toBe(0o600);
      } finally {
        writeFileSync(project.configFile, config);
        project.writeConfig();
        writeFileSync(path.join(project.dir, '.env'), `API_TOKEN=${secret}\n`);
        rmSync(path.join(project.dir, 'templates/db.conf.hbs'));
        rmSync(path.join(project.dir, 'templates/key.json.hbs'));
      }
    },
  );

  it("a failing hook's output tail that cuts a multi-line secret shows no line of it", async () => {
    const pem =
      '-----BEGIN PRIVATE KEY-----\nAAAAplantedPEMline1\n' +
      'BBBBplantedPEMline2\nCCCCplantedPEMline3\n-----END PRIVATE KEY-----';
    writeFileSync(path.join(project.dir, '.env'), `API_TOKEN=${secret}\nPEM="${pem.replace(/\n/g, '\\n')}"\n`);
    // The key, then 13 more lines: the last 15 lines start inside the key.
    project.writeConfig({
      hooks: {
        beforeSwitch: [{ name: 'leaky', commands: ['printf "%s\\n" "$PEM" >&2; seq 13 >&2; exit 3'], env: {} }],
      },
    });
    const config = readFileSync(project.configFile, 'utf8');
    writeFileSync(project.configFile, config.replace('"env": {}', '"env": { PEM: process.env.PEM! }'));
    try {
      const result = await project.run(['deploy']);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/hook "leaky" failed on local \(exit 3\):\n[\s\S]*\n13\n/);
      expect(leaks(result.stdout + result.stderr, ['plantedPEMline', 'PRIVATE KEY'])).toEqual([]);
    } finally {
      project.writeConfig();
      writeFileSync(path.join(project.dir, '.env'), `API_TOKEN=${secret}\n`);
    }
  });

  it('an error raised while the config is evaluated is redacted, in text and --json', async () => {
    writeFileSync(path.join(project.dir, '.env'), `API_TOKEN=${secret}\nSERVICE_JSON=svc-s3cret-planted\n`);
    const config = readFileSync(project.configFile, 'utf8');
    writeFileSync(
      project.configFile,
      config.replace(
        '"application": "hello",',
        '"application": "hello",\n  vars: { service: JSON.parse(process.env.SERVICE_JSON!) },',
      ),
    );
    try {
      for (const args of [['deploy'], ['--json', 'deploy']]) {
        const result = await project.run(args);
        expect(result.code, args.join(' ')).toBe(2);
        expect(result.stderr).toMatch(/is not valid JSON/);
        expect(leaks(result.stdout + result.stderr, ['svc-s3cret-planted'])).toEqual([]);
      }
    } finally {
      writeFileSync(project.configFile, config);
      writeFileSync(path.join(project.dir, '.env'), `API_TOKEN=${secret}\n`);
    }
  });

  it(
    'a value under 4 characters of a key that looks secret is refused (exit 2, ' +
      'naming it); other short values are allowed',
    async () => {
      writeFileSync(path.join(project.dir, '.env'), `API_TOKEN=${secret}\nDEBUG=1\n`);
      const fine = await project.run(['check']);
      expect(fine.code, fine.stderr).toBe(0);
      writeFileSync(path.join(project.dir, '.env'), `API_TOKEN=${secret}\nDB_PASSWORD=ab7\n`);
      try {
        const refused = await project.run(['deploy']);
        expect(refused.code).toBe(2);
        expect(refused.stderr).toMatch(/\.env: DB_PASSWORD is 3 characters/);
        expect(refused.stderr).not.toContain('ab7');
      } finally {
        writeFileSync(path.join(project.dir, '.env'), `API_TOKEN=${secret}\n`);
      }
    },
  );

  it('a release marked bad records the reason redacted, in a file the secret never reaches', async () => {
    project.writeConfig({
      hooks: { afterSwitch: [{ name: 'smoke', commands: ['echo "smoke failed with $API_TOKEN" >&2', 'exit 4'] }] },
    });
    try {
      const result = await project.run(['deploy']);
      expect(result.code).toBe(1);
      const bad = releaseIdOf(result.stdout);
      const meta = JSON.parse(
        readFileSync(path.join(project.deployTo, 'releases', bad, '.slipway/release.json'), 'utf8'),
      );
      expect(meta.status).toBe('bad');
      expect(meta.reason).toContain('smoke failed with ***');
      expect(leaks(JSON.stringify(meta))).toEqual([]);
    } finally {
      project.writeConfig();
    }
  });

  it('a rendered file holding a secret is 0600 even where the archive already had it (0644)', async () => {
    project.commit('a tracked .slipway/secret.conf', { 'app/.slipway/secret.conf': 'placeholder\n' });
    const result = await project.run(['deploy']);
    expect(result.code, result.stderr).toBe(0);
    const file = path.join(project.deployTo, 'releases', project.live()!, '.slipway/secret.conf');
    expect(readFileSync(file, 'utf8')).toBe(`token=${secret}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});
