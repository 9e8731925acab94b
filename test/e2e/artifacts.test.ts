// Build once, ship the same bytes everywhere: the artifact store (dir, http on a real WebDAV nginx, and s3 on a
// real OpenStack Swift with s3api), deploy --artifact to 3 real sshd hosts that fetch it themselves, promote into
// another environment, and the failures: the store down during the fetch, a tampered artifact.
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArtifactManifest } from '../../tasks/release/manifest.js';
import { type DavServer, startDavServer } from '../helpers/dav.js';
import { makeProject, type Project, waitForOutput } from '../helpers/project.js';
import {
  type CountingRelays,
  type SshFleet,
  startCountingRelays,
  startSshHosts,
  type TestHost,
} from '../helpers/sshd.js';
import { type SwiftServer, startSwift, swiftMissing } from '../helpers/swift.js';

/** The http store's user and password for PUT/DELETE (the test project's .env); hosts GET without. */
const STORE_AUTH = 'deployer:store-password-7f3c1e';

const swiftCannot = swiftMissing();
// Never a silent skip: the reason is printed, and the skipped test's name says it.
if (swiftCannot)
  console.warn(`artifacts.test.ts: s3 SKIPPED, Swift (the S3-compatible test server) cannot run here: ${swiftCannot}`);

let fleet: SshFleet;
let relays: CountingRelays;
let dav: DavServer;
beforeAll(async () => {
  fleet = await startSshHosts(3);
  relays = await startCountingRelays(fleet);
  dav = await startDavServer('127.0.0.9', { auth: STORE_AUTH });
}, 120_000);
afterAll(async () => {
  await dav?.stop();
  await relays?.stop();
  await fleet?.stop();
});

const root = (h: TestHost, env: string) => path.join(h.srvDir, env);
const live = (h: TestHost, env: string) => {
  try {
    return readlinkSync(path.join(root(h, env), 'current')).replace('releases/', '');
  } catch {
    return null;
  }
};
const releases = (h: TestHost, env: string) =>
  existsSync(path.join(root(h, env), 'releases')) ? readdirSync(path.join(root(h, env), 'releases')).sort() : [];
const sha256 = (file: string | Buffer) =>
  createHash('sha256')
    .update(typeof file === 'string' ? readFileSync(file) : file)
    .digest('hex');
const builtId = (output: string) => {
  const match = /artifact (\S+) published to/.exec(output);
  if (!match) throw new Error(`no artifact id in:\n${output}`);
  return match[1];
};

/** Every file of the manifest, on every host, has the manifest's sha256. */
function expectSameBytes(manifest: ArtifactManifest, env: string) {
  const files = manifest.files.filter((f) => f.sha256);
  expect(files.length).toBeGreaterThan(2);
  for (const h of fleet.hosts) {
    const dir = path.join(root(h, env), 'releases', manifest.id);
    for (const f of files) expect(sha256(path.join(dir, f.path)), `${h.name} ${env} ${f.path}`).toBe(f.sha256);
    const meta = JSON.parse(readFileSync(path.join(dir, '.slipway/release.json'), 'utf8'));
    expect(meta.artifact.sha256).toBe(manifest.sha256);
  }
}

/** A store under test: its config, .env, its objects by key (read and written behind slipway's back), down/up. */
interface TestStore {
  store: Record<string, unknown>;
  dotenv: string;
  /** The object's path on disk (dir and http stores only). */
  file(key: string): string;
  read(key: string): Promise<Buffer>;
  write(key: string, bytes: Buffer): Promise<void>;
  /** Strings that must appear in no output (the store's credentials). */
  secrets: string[];
  down(): Promise<void> | void;
  up(): Promise<void> | void;
  cleanup(): Promise<void> | void;
}

const onDisk = (file: (key: string) => string) => ({
  file,
  read: async (key: string) => readFileSync(file(key)),
  write: async (key: string, bytes: Buffer) => writeFileSync(file(key), bytes),
});

const stores: Array<{ name: string; skip?: string; setup(): Promise<TestStore> }> = [
  {
    name: 'dir',
    async setup() {
      const dir = mkdtempSync(path.join(tmpdir(), 'slipway-store-'));
      // The deploy user on the hosts reads the artifacts by path.
      chmodSync(dir, 0o755);
      return {
        store: { type: 'dir', path: dir },
        dotenv: '',
        ...onDisk((key: string) => path.join(dir, key)),
        secrets: [],
        down: () => renameSync(dir, `${dir}.away`),
        up: () => renameSync(`${dir}.away`, dir),
        cleanup: () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 'http',
    async setup() {
      return {
        store: { type: 'http', url: dav.url },
        dotenv: `SLIPWAY_STORE_AUTH=${STORE_AUTH}\n`,
        ...onDisk((key: string) => path.join(dav.root, key)),
        secrets: ['store-password'],
        down: () => dav.stopServer(),
        up: () => dav.start(),
        cleanup: () => rmSync(path.join(dav.root, 'hello'), { recursive: true, force: true }),
      };
    },
  },
  {
    // Swift started once for the file, here (only when these tests run), stopped by PID in afterAll (cleanup).
    name: 's3',
    skip: swiftCannot,
    async setup() {
      const swift: SwiftServer = await startSwift();
      const Bucket = 'slipway-artifacts';
      const prefix = 'builds';
      const credentials = { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey };
      process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
      const s3 = new S3Client({ endpoint: swift.endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
      // The bucket is the operator's to create (README): slipway only writes into it.
      await s3.send(new CreateBucketCommand({ Bucket }));
      return {
        store: { type: 's3', bucket: Bucket, prefix, endpoint: swift.endpoint, forcePathStyle: true },
        dotenv: `AWS_ACCESS_KEY_ID=${swift.accessKeyId}\nAWS_SECRET_ACCESS_KEY=${swift.secretAccessKey}\n`,
        file: () => {
          throw new Error('s3 objects are not files');
        },
        read: async (key) => {
          const object = await s3.send(new GetObjectCommand({ Bucket, Key: `${prefix}/${key}` }));
          return Buffer.from(await object.Body!.transformToByteArray());
        },
        write: async (key, bytes) =>
          void (await s3.send(new PutObjectCommand({ Bucket, Key: `${prefix}/${key}`, Body: bytes }))),
        // The secret, and any presigned URL's signature (a credential for an hour).
        secrets: [swift.secretAccessKey, 'X-Amz-Signature'],
        down: () => swift.down(),
        up: () => swift.up(),
        cleanup: async () => {
          s3.destroy();
          await swift.stop();
        },
      };
    },
  },
];

describe.each(stores)('the $name store', (kind) => {
  if (kind.skip) {
    it.skip(`SKIPPED: Swift cannot run here: ${kind.skip}`, () => undefined);
    return;
  }
  let project: Project;
  let store: TestStore;
  let first: ArtifactManifest;
  const manifestOf = async (env: string, id: string) =>
    JSON.parse((await store.read(`hello/${env}/${id}.json`)).toString('utf8')) as ArtifactManifest;
  const expectNoSecrets = (output: string) => {
    for (const secret of store.secrets) expect(output).not.toContain(secret);
  };

  beforeAll(async () => {
    store = await kind.setup();
    // Staging's hosts through relays that count the bytes reaching each sshd.
    const production = fleet.hosts.map((h) => fleet.configHost(h, '/srv/production'));
    project = makeProject({
      config: {
        knownHosts: relays.knownHosts,
        artifacts: { store: store.store },
        environments: { staging: { hosts: relays.configHosts('/srv/staging') }, production: { hosts: production } },
        defaultEnvironment: 'staging',
      },
    });
    writeFileSync(path.join(project.dir, '.env.production'), 'GREETING=from-production-env\n');
    writeFileSync(path.join(project.dir, '.env'), store.dotenv);
  }, 180_000);
  afterAll(async () => {
    project?.cleanup();
    await store?.cleanup();
    for (const h of fleet.hosts)
      for (const env of ['staging', 'production']) rmSync(root(h, env), { recursive: true, force: true });
  });

  it('builds once; deploy --artifact latest puts the same bytes on 3 hosts, sending each ≤ 5 KB', async () => {
    // A 256 KiB file nothing compresses: were the archive sent to the hosts, each would receive it.
    project.commit({ 'blob.bin': randomBytes(256 * 1024).toString('latin1') });
    // Two artifact deploys first put slipway's code on the hosts (.slipway/lib-*.sh, sent once per version): the
    // first builds the environment, the second is the first of the warm ones.
    for (const _ of ['cold', 'first warm']) {
      const earlier = await project.run(['build']);
      expect(earlier.code, earlier.stderr).toBe(0);
      const deploy = await project.run(['deploy', '--artifact', 'latest']);
      expect(deploy.code, deploy.stderr + deploy.stdout).toBe(0);
    }
    const build = await project.run(['build']);
    expect(build.code, build.stderr).toBe(0);
    expectNoSecrets(build.stdout + build.stderr);
    const id = builtId(build.stderr + build.stdout);
    first = await manifestOf('staging', id);
    expect(first.bytes).toBeGreaterThan(256 * 1024);
    expect((await store.read('hello/staging/latest')).toString('utf8').trim()).toBe(id);
    expect(sha256(await store.read(`hello/staging/${id}.tar.gz`))).toBe(first.sha256);
    expect(first.compat).toBe(1);
    expect(first.files.map((f) => f.path)).toContain('server.js');

    const before = fleet.hosts.map((_, i) => relays.bytes(i));
    for (const h of fleet.hosts) fleet.resetCounts(h);
    const deploy = await project.run(['deploy', '--artifact', 'latest']);
    expect(deploy.code, deploy.stderr + deploy.stdout).toBe(0);
    expectNoSecrets(deploy.stdout + deploy.stderr);
    for (const h of fleet.hosts) expect(live(h, 'staging')).toBe(id);
    expectSameBytes(first, 'staging');
    for (const [i, h] of fleet.hosts.entries()) {
      // The fetch rides in the round trip an upload takes: a warm redeploy's bound (ssh-deploy.test.ts).
      expect(fleet.counts(h).connections).toBe(1);
      expect(fleet.counts(h).execRequests).toBeLessThanOrEqual(8);
      const sent = relays.bytes(i) - before[i];
      // The SSH login, the calls of slipway's code with their values, curl's config: whatever the artifact's size
      // (here > 256 KiB); the configs, the same as the live release's, are copied on the host.
      expect(sent, `bytes ${h.name} received from the deployer`).toBeLessThanOrEqual(5 * 1024);
    }
  }, 180_000);

  it('promote:staging deploys exactly what staging runs into production, its own .env beside it', async () => {
    const promote = await project.run(['--env', 'production', 'promote:staging']);
    expect(promote.code, promote.stderr + promote.stdout).toBe(0);
    for (const h of fleet.hosts) expect(live(h, 'production')).toBe(first.id);
    expectSameBytes(first, 'production');
    for (const h of fleet.hosts) {
      expect(readFileSync(path.join(root(h, 'production'), 'shared/.env'), 'utf8')).toContain('from-production-env');
      expect(existsSync(path.join(root(h, 'staging'), 'shared/.env'))).toBe(false);
    }
  }, 180_000);

  // Only the http store has credentials.
  if (kind.name === 'http')
    it("http: PUT needs the store's credentials (.env); without them build fails naming the 401", async () => {
      const put = await fetch(`${dav.url}/hello/x`, { method: 'PUT', body: 'x' });
      expect(put.status).toBe(401);
      writeFileSync(path.join(project.dir, '.env'), '');
      try {
        const build = await project.run(['build']);
        expect(build.code).toBe(1);
        expect(build.stderr).toMatch(
          /store http http:\/\/127\.0\.0\.9:\d+\/artifacts: PUT hello\/staging\/\S+\.tar\.gz: HTTP 401/,
        );
      } finally {
        writeFileSync(path.join(project.dir, '.env'), store.dotenv);
      }
    }, 180_000);

  it('a tampered artifact is refused by its checksum on every host: nothing switches', async () => {
    project.commit({ 'server.js': `${readFileSync(path.join(project.dir, 'app/server.js'), 'utf8')}// v2\n` });
    const build = await project.run(['build']);
    expect(build.code, build.stderr).toBe(0);
    const id = builtId(build.stderr + build.stdout);
    const archive = `hello/staging/${id}.tar.gz`;
    const bytes = await store.read(archive);
    bytes[bytes.length - 10] ^= 0xff;
    await store.write(archive, bytes);
    const before = fleet.hosts.map((h) => releases(h, 'staging'));
    const deploy = await project.run(['deploy', '--artifact', id]);
    expect(deploy.code).toBe(1);
    expect(deploy.stderr).toContain('refused, its sha256 does not match');
    for (const [i, h] of fleet.hosts.entries()) {
      expect(live(h, 'staging')).toBe(first.id);
      expect(releases(h, 'staging')).toEqual(before[i]);
    }
  }, 180_000);

  it('the store down during the fetch: no host switches, nothing live changes', async () => {
    const build = await project.run(['build']);
    expect(build.code, build.stderr).toBe(0);
    const id = builtId(build.stderr + build.stdout);
    const resume = path.join(project.dir, 'resume');
    const child = project.start(['deploy', '--artifact', 'latest'], {
      SLIPWAY_FAULT: 'pause:before:fetch',
      SLIPWAY_FAULT_RESUME: resume,
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    let output = '';
    child.stderr!.on('data', (d) => (output += d));
    await waitForOutput(child, /@@paused before:fetch/);
    await store.down();
    try {
      writeFileSync(resume, '');
      expect(await exited).toBe(1);
    } finally {
      await store.up();
    }
    expect(output).toContain(`fetching artifact hello/staging/${id}.tar.gz failed after 3 attempts`);
    for (const h of fleet.hosts) {
      expect(live(h, 'staging')).toBe(first.id);
      expect(releases(h, 'staging')).not.toContain(id);
      expect(live(h, 'production')).toBe(first.id);
    }
  }, 180_000);

  // Store-independent: once, with the dir store.
  if (kind.name !== 'dir') return;

  it('promote refuses while the source hosts disagree, or its release is marked bad; production unchanged', async () => {
    const build = await project.run(['build']);
    expect(build.code, build.stderr).toBe(0);
    const id = builtId(build.stderr + build.stdout);
    const one = await project.run(['--hosts', 'web1', 'deploy', '--artifact', id]);
    expect(one.code, one.stderr).toBe(0);
    const disagree = await project.run(['--env', 'production', 'promote:staging']);
    expect(disagree.code).toBe(1);
    expect(disagree.stderr).toContain(`the hosts of staging disagree: web1 runs ${id}, web2 runs ${first.id}`);

    const back = await project.run(['--hosts', 'web1', `rollback:${first.id}`]);
    expect(back.code, back.stderr).toBe(0);
    const meta = path.join(root(fleet.hosts[1], 'staging'), 'releases', first.id, '.slipway/release.json');
    const text = readFileSync(meta, 'utf8');
    writeFileSync(meta, JSON.stringify({ ...JSON.parse(text), status: 'bad', reason: 'broke checkout' }));
    try {
      const bad = await project.run(['--env', 'production', 'promote:staging']);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain(`release ${first.id} is marked bad on web2 (broke checkout)`);
    } finally {
      writeFileSync(meta, text);
    }
    for (const h of fleet.hosts) expect(live(h, 'production')).toBe(first.id);
  }, 180_000);

  it('artifacts lists latest and where each runs; artifacts:purge keeps artifacts.keep, latest and the live ones', async () => {
    const ids = () =>
      readdirSync(store.file('hello/staging'))
        .filter((f) => f.endsWith('.json'))
        .map((f) => f.replace(/\.json$/, ''))
        .sort();
    const before = ids();
    expect(before.length).toBe(6);
    const latest = readFileSync(store.file('hello/staging/latest'), 'utf8').trim();
    const list = await project.run(['artifacts']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${first.id} .*\\(live: production, staging\\)`));
    expect(list.stdout).toMatch(new RegExp(`${latest} .*\\(latest\\)`));
    expect(ids()).toEqual(before);

    project.writeConfig({ artifacts: { store: store.store, keep: 1 } });
    const purge = await project.run(['artifacts:purge']);
    expect(purge.code, purge.stderr).toBe(0);
    expect(ids()).toEqual([first.id, latest].sort());
    for (const id of before.filter((i) => i !== first.id && i !== latest)) {
      expect(existsSync(store.file(`hello/staging/${id}.tar.gz`))).toBe(false);
      expect(purge.stdout).toMatch(new RegExp(`${id} .*\\(removed\\)`));
    }
    for (const h of fleet.hosts) expect(live(h, 'production')).toBe(first.id);
  }, 180_000);
});

describe('artifact input refused before any host is touched', () => {
  let project: Project;
  let storeDir: string;
  beforeAll(() => {
    storeDir = mkdtempSync(path.join(tmpdir(), 'slipway-store-'));
    project = makeProject();
  });
  afterAll(() => {
    project?.cleanup();
    rmSync(storeDir, { recursive: true, force: true });
  });

  it('--artifact, build and promote without a store or a source: exit 2, naming what to add', async () => {
    const deploy = await project.run(['deploy', '--artifact', 'latest']);
    expect(deploy.code).toBe(2);
    expect(deploy.stderr).toContain('--artifact needs artifacts.store in the config');
    const build = await project.run(['build']);
    expect(build.code).toBe(2);
    expect(build.stderr).toContain("build needs an artifact store: add artifacts: { store: { type: 'dir'");
    const promote = await project.run(['promote']);
    expect(promote.code).toBe(2);
    expect(promote.stderr).toContain('promote needs the environment to promote from');
    const unknown = await project.run(['promote:staging']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('promote:staging: no environment "staging"; environments: local');
    expect(project.snapshot()).toEqual([]);
  });

  it('an artifact of a compat level this slipway does not know is refused; an unknown id lists the ids', async () => {
    project.writeConfig({ artifacts: { store: { type: 'dir', path: storeDir } } });
    const build = await project.run(['build']);
    expect(build.code, build.stderr).toBe(0);
    const id = builtId(build.stderr + build.stdout);
    const manifest = path.join(storeDir, `hello/local/${id}.json`);
    writeFileSync(manifest, JSON.stringify({ ...JSON.parse(readFileSync(manifest, 'utf8')), compat: 99 }));
    const deploy = await project.run(['deploy', '--artifact', 'latest']);
    expect(deploy.code).toBe(1);
    expect(deploy.stderr).toContain(`artifact ${id} has compat level 99; this slipway deploys levels 1`);
    const unknown = await project.run(['deploy', '--artifact', '2020.01.01-00.00.00-abcdef0']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`no artifact 2020.01.01-00.00.00-abcdef0 in dir ${storeDir} under hello/local`);
    expect(unknown.stderr).toContain(`artifacts: ${id}`);
    expect(project.snapshot()).toEqual([]);
  });

  it('deploy --dry-run with a store publishes nothing and changes no host', async () => {
    const before = readdirSync(path.join(storeDir, 'hello/local')).sort();
    const dry = await project.run(['deploy', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/artifact \S+ would be published to dir /);
    expect(dry.stdout).toMatch(/would fetch hello\/local\/\S+\.tar\.gz/);
    expect(readdirSync(path.join(storeDir, 'hello/local')).sort()).toEqual(before);
    expect(project.snapshot()).toEqual([]);
  });
});
