// The s3 artifact store against a real S3-compatible server (OpenStack Swift + s3api, test/helpers/swift.ts,
// started once for the file): put, get, list, remove, a presigned GET fetched by curl, multipart uploads never
// visible under their key before they complete, and the credentials never in the CLI's output.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CreateBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3StoreConfig } from '../../tasks/config/s3-store.js';
import { openS3Store, type S3Store } from '../../tasks/store/s3.js';
import { makeProject, type Project, ROOT } from '../helpers/project.js';
import { type SwiftServer, startSwift, swiftMissing } from '../helpers/swift.js';

const TIMEOUT = 200_000;
const missing = swiftMissing();
// Never a silent skip: the reason is printed, and the skipped test's name says it.
if (missing)
  console.warn(`store-s3.test.ts: SKIPPED, Swift (the S3-compatible test server) cannot run here: ${missing}`);

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(missing)('s3 store against Swift (s3api)', () => {
  let swift: SwiftServer;
  let raw: S3Client;
  let tmp: string;
  const bucket = 'slipway-artifacts';
  let config: S3StoreConfig;
  let env: Record<string, string>;

  beforeAll(async () => {
    // A multipart upload of more than 2 parts is refused at its third: an upload failing half-way, for real.
    swift = await startSwift({ maxUploadParts: 2 });
    tmp = mkdtempSync(path.join(tmpdir(), 'slipway-s3-'));
    env = { AWS_ACCESS_KEY_ID: swift.accessKeyId, AWS_SECRET_ACCESS_KEY: swift.secretAccessKey };
    config = { type: 's3', bucket, prefix: 'team/builds', endpoint: swift.endpoint, forcePathStyle: true };
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
    raw = new S3Client({
      endpoint: swift.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey },
    });
    await raw.send(new CreateBucketCommand({ Bucket: bucket }));
  }, TIMEOUT);
  afterAll(async () => {
    raw?.destroy();
    await swift?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }, TIMEOUT);

  it(
    'put, get, list, remove: keys under the prefix, sorted; a missing key is undefined',
    async () => {
      const store = await openS3Store(config, env);
      expect(store.description).toBe(`s3 ${bucket}/team/builds at ${new URL(swift.endpoint).host}`);
      const file = path.join(tmp, 'artifact.tar.gz');
      const bytes = randomBytes(300_000);
      writeFileSync(file, bytes);
      await store.putFile('hello/staging/2026.01.01-00.00.01-aaaaaaa.tar.gz', file);
      await store.putText('hello/staging/latest', '2026.01.01-00.00.01-aaaaaaa\n');
      await store.putText('hello/production/latest', 'x\n');
      expect(await store.getText('hello/staging/latest')).toBe('2026.01.01-00.00.01-aaaaaaa\n');
      expect(await store.getText('hello/staging/nothing')).toBeUndefined();
      expect(await store.list('hello/staging/')).toEqual([
        'hello/staging/2026.01.01-00.00.01-aaaaaaa.tar.gz',
        'hello/staging/latest',
      ]);
      expect(await store.list('hello/')).toHaveLength(3);
      expect(await store.list('other/')).toEqual([]);
      // Stored under the prefix, whole.
      const head = await raw.send(
        new HeadObjectCommand({ Bucket: bucket, Key: 'team/builds/hello/staging/2026.01.01-00.00.01-aaaaaaa.tar.gz' }),
      );
      expect(head.ContentLength).toBe(bytes.length);
      await store.remove('hello/production/latest');
      expect(await store.getText('hello/production/latest')).toBeUndefined();
      expect(await store.list('hello/')).toHaveLength(2);
    },
    TIMEOUT,
  );

  it(
    'a presigned GET URL: curl fetches the exact bytes without credentials; the bare URL is refused',
    async () => {
      const store = await openS3Store(config, env);
      const file = path.join(tmp, 'fetched.tar.gz');
      const bytes = randomBytes(200_000);
      writeFileSync(file, bytes);
      await store.putFile('hello/staging/fetched.tar.gz', file);
      const source = await store.sourceForHost('hello/staging/fetched.tar.gz');
      if (!('url' in source)) throw new Error('expected a URL');
      expect(source.url).toContain('X-Amz-Signature=');
      expect(source.url).not.toContain(swift.secretAccessKey);
      const fetched = execFileSync('curl', ['-fsS', source.url], { env: { PATH: process.env.PATH } });
      expect(sha256(fetched)).toBe(sha256(bytes));
      const bare = source.url.slice(0, source.url.indexOf('?'));
      const status = execFileSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', bare], { encoding: 'utf8' });
      expect(status).toMatch(/^4\d\d$/); // Swift says 400 (no credentials), AWS 403
    },
    TIMEOUT,
  );

  it(
    'a multipart upload is never visible under its key until complete, then whole',
    async () => {
      const part = 5 * 1024 * 1024;
      const store: S3Store = await openS3Store(config, env, { partSize: part, concurrency: 2 });
      // A FIFO: the test decides when the upload may go on, so "in the middle" is a state, not a moment.
      const fifo = path.join(tmp, 'slow.fifo');
      execFileSync('mkfifo', [fifo]);
      const key = 'hello/staging/big.tar.gz';
      const uploading = store.putFile(key, fifo);
      // Opened asynchronously: the store opens its end on the event loop, which a blocking open would stall.
      const writer = await open(fifo, 'w');
      const first = randomBytes(part + 1024 * 1024);
      const rest = randomBytes(3 * 1024 * 1024); // two parts in all (the server takes no more)
      await writer.write(first);
      // Wait until the service holds an unfinished upload for the key with a part in it.
      let parts = 0;
      for (let waited = 0; parts === 0 && waited < 60_000; waited += 100) {
        const uploads = await raw.send(
          new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `team/builds/${key}` }),
        );
        const upload = uploads.Uploads?.[0];
        if (upload) {
          const listed = await raw.send(
            new ListPartsCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }),
          );
          parts = listed.Parts?.length ?? 0;
        }
        if (!parts) await sleep(100);
      }
      expect(parts).toBeGreaterThan(0);
      expect(await store.getText(key)).toBeUndefined();
      expect(await store.list('hello/staging/')).not.toContain(key);
      await expect(raw.send(new HeadObjectCommand({ Bucket: bucket, Key: `team/builds/${key}` }))).rejects.toThrow();
      await writer.write(rest);
      await writer.close();
      await uploading;
      const whole = Buffer.concat([first, rest]);
      const source = await store.sourceForHost(key);
      const fetched = execFileSync('curl', ['-fsS', (source as { url: string }).url], { maxBuffer: 64 * 1024 * 1024 });
      expect(fetched.length).toBe(whole.length);
      expect(sha256(fetched)).toBe(sha256(whole));
      const left = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'team/builds/' }));
      expect(left.Uploads ?? []).toEqual([]);
    },
    TIMEOUT,
  );

  it(
    'an upload failing half-way (a part refused) is aborted: no object under its key, no parts left behind',
    async () => {
      const part = 5 * 1024 * 1024;
      const store = await openS3Store(config, env, { partSize: part });
      const file = path.join(tmp, 'too-many-parts.tar.gz');
      writeFileSync(file, randomBytes(3 * part + 1024));
      const key = 'hello/staging/too-many-parts.tar.gz';
      await expect(store.putFile(key, file)).rejects.toThrow(
        new RegExp(`^s3 ${bucket}/team/builds at .*: upload part ${key} failed \\(HTTP 400\\)`),
      );
      expect(await store.getText(key)).toBeUndefined();
      expect(await store.list('hello/staging/')).not.toContain(key);
      const left = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'team/builds/' }));
      expect(left.Uploads ?? []).toEqual([]);
    },
    TIMEOUT,
  );

  describe('through the CLI (a fabfile task of its own)', () => {
    let project: Project;
    let fabfile: string;
    beforeAll(() => {
      project = makeProject();
      fabfile = path.join(project.dir, 'store-fabfile.mts');
      writeFileSync(
        fabfile,
        `import { openS3Store, runTasks, task } from ${JSON.stringify(path.join(ROOT, 'tasks/index.ts'))};
await runTasks(
  {
    'store-put': task('Put a file into the s3 store and list it', async (run) => {
      const store = await openS3Store(JSON.parse(process.env.TEST_STORE!), process.env);
      run.log.line(\`store: \${store.description}\`);
      await store.putText('cli/hello.txt', 'hello');
      run.log.line(\`keys: \${(await store.list('cli/')).join(', ')}\`);
    }),
  },
  { root: import.meta.dirname },
);
`,
      );
    });
    afterAll(() => project?.cleanup());

    const run = (dotenv: string, store: S3StoreConfig = config) => {
      writeFileSync(path.join(project.dir, '.env'), dotenv);
      const clean = Object.fromEntries(
        Object.keys(process.env)
          .filter((k) => k.startsWith('AWS_'))
          .map((k) => [k, '']),
      );
      return project.run(['store-put'], { fabfile, env: { ...clean, TEST_STORE: JSON.stringify(store) } });
    };

    it(
      'credentials from .env work and never appear in the output, also when the service refuses them',
      async () => {
        const good = await run(
          `AWS_ACCESS_KEY_ID=${swift.accessKeyId}\nAWS_SECRET_ACCESS_KEY=${swift.secretAccessKey}\n`,
        );
        expect(good.code, good.stderr).toBe(0);
        expect(good.stdout + good.stderr).toContain('keys: cli/hello.txt');
        expect(good.stdout + good.stderr).toContain(`store: s3 ${bucket}/team/builds`);
        expect(good.stdout + good.stderr).not.toContain(swift.secretAccessKey);

        const wrongSecret = randomBytes(12).toString('hex');
        const refused = await run(`AWS_ACCESS_KEY_ID=${swift.accessKeyId}\nAWS_SECRET_ACCESS_KEY=${wrongSecret}\n`);
        expect(refused.code).toBe(1);
        expect(refused.stderr).toMatch(/s3 slipway-artifacts\/team\/builds .*put cli\/hello\.txt failed \(HTTP 403\)/);
        for (const secret of [wrongSecret, swift.secretAccessKey, swift.accessKeyId])
          expect(refused.stdout + refused.stderr).not.toContain(secret);
      },
      TIMEOUT,
    );

    it(
      'missing credentials: exit 2 naming the variables; an unreachable endpoint: exit 1 naming the store',
      async () => {
        const none = await run('');
        expect(none.code).toBe(2);
        expect(none.stderr).toContain('set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment or in .env');
        const down = await run(
          `AWS_ACCESS_KEY_ID=${swift.accessKeyId}\nAWS_SECRET_ACCESS_KEY=${swift.secretAccessKey}\n`,
          { ...config, endpoint: 'http://127.0.0.1:9' },
        );
        expect(down.code).toBe(1);
        expect(down.stderr).toContain('s3 slipway-artifacts/team/builds at 127.0.0.1:9: put cli/hello.txt failed');
        expect(down.stdout + down.stderr).not.toContain(swift.secretAccessKey);
      },
      TIMEOUT,
    );
  });
});

if (missing) it.skip(`SKIPPED: Swift cannot run here: ${missing}`, () => undefined);
