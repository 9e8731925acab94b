// The `s3` artifact store: any S3-compatible service through the AWS SDK for JavaScript v3 (pinned), loaded
// only when a store of this type is opened. Uploads stream the file in parts: one PutObject when it fits in a
// part, a multipart upload otherwise (never visible under its key until completed, aborted on failure).
// Hosts get presigned GET URLs; the credentials stay on the deployer and never reach any output.
import { createReadStream, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { S3StoreConfig } from '../config/s3-store.js';
import { ConfigError, SlipwayError } from '../lib/errors.js';
import { secrets } from '../lib/redact.js';
import type { ArtifactStore, HostSource } from './store.js';

/** A store request failed (the service said no, or could not be reached): the task fails, exit 1. */
export class S3StoreError extends SlipwayError {}

export interface S3Tuning {
  /** Bytes per part of an upload (S3: at least 5 MiB); a file up to this size is one PutObject. */
  partSize?: number;
  /** Parts uploaded at once. */
  concurrency?: number;
}

/** 8 MiB parts, 4 at once: at most ~40 MiB held in memory while uploading, objects up to 80 GB (10,000 parts). */
const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
const DEFAULT_CONCURRENCY = 4;
/** A presigned URL outlives the longest deploy that fetches it, and no longer. */
const PRESIGNED_SECONDS = 3600;

type Sdk = typeof import('@aws-sdk/client-s3');

/** The SDK's error fields this store reports (never the request, which carries the signature). */
interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

const md5 = (data: Buffer) => createHash('md5').update(data).digest('base64');

export class S3Store implements ArtifactStore {
  readonly description: string;
  private readonly partSize: number;
  private readonly concurrency: number;

  constructor(
    private readonly sdk: Sdk,
    private readonly client: S3Client,
    private readonly presign: typeof import('@aws-sdk/s3-request-presigner').getSignedUrl,
    private readonly config: S3StoreConfig,
    tuning: S3Tuning = {},
  ) {
    const at = config.endpoint ? ` at ${new URL(config.endpoint).host}` : '';
    this.description = `s3 ${config.bucket}${config.prefix ? `/${config.prefix}` : ''}${at}`;
    this.partSize = Math.max(tuning.partSize ?? DEFAULT_PART_SIZE, 5 * 1024 * 1024);
    this.concurrency = tuning.concurrency ?? DEFAULT_CONCURRENCY;
  }

  private objectKey(key: string): string {
    if (!key || key.startsWith('/') || key.split('/').some((s) => s === '..' || s === '.'))
      throw new S3StoreError(`${this.description}: bad key "${key}"`);
    return this.config.prefix ? `${this.config.prefix}/${key}` : key;
  }

  /** The SDK's error as one line naming the store, the operation and the key; redacted. */
  private failure(op: string, key: string, error: unknown): S3StoreError {
    const e = error as SdkError;
    const status = e.$metadata?.httpStatusCode ? ` (HTTP ${e.$metadata.httpStatusCode})` : '';
    const what = [e.name && e.name !== 'Error' ? e.name : e.code, e.message].filter(Boolean).join(': ');
    return new S3StoreError(secrets.redact(`${this.description}: ${op} ${key} failed${status}: ${what || 'unknown'}`));
  }

  private async send<T>(op: string, key: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      throw this.failure(op, key, error);
    }
  }

  async putText(key: string, text: string): Promise<void> {
    const body = Buffer.from(text);
    const Key = this.objectKey(key);
    await this.send('put', key, () =>
      this.client.send(
        new this.sdk.PutObjectCommand({
          Bucket: this.config.bucket,
          Key,
          Body: body,
          ContentMD5: md5(body),
          ContentType: 'text/plain; charset=utf-8',
        }),
      ),
    );
  }

  /**
   * Streams the file in parts of partSize: the first part full starts a multipart upload (S3 shows it under
   * the key only once completed); a file that ends within one part is a single PutObject. Each part carries
   * its MD5, checked by the service. A regular file that changes size while read is refused.
   */
  async putFile(key: string, file: string): Promise<void> {
    const Key = this.objectKey(key);
    const Bucket = this.config.bucket;
    let stat: ReturnType<typeof statSync>;
    try {
      stat = statSync(file);
    } catch (error) {
      throw new S3StoreError(`${this.description}: cannot upload ${file}: ${(error as NodeJS.ErrnoException).code}`);
    }
    let uploadId: string | undefined;
    const parts: Array<{ PartNumber: number; ETag: string }> = [];
    const inFlight = new Set<Promise<void>>();
    let failed: unknown;
    let nextPart = 1;
    const uploadPart = (PartNumber: number, Body: Buffer) => {
      const sending = this.send('upload part', key, () =>
        this.client.send(
          new this.sdk.UploadPartCommand({ Bucket, Key, UploadId: uploadId, PartNumber, Body, ContentMD5: md5(Body) }),
        ),
      ).then(
        (result) => void parts.push({ PartNumber, ETag: result.ETag! }),
        (error) => {
          failed ??= error;
        },
      );
      const tracked = sending.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
    };
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let total = 0;
    try {
      for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
        pending.push(chunk);
        pendingBytes += chunk.length;
        total += chunk.length;
        while (pendingBytes >= this.partSize) {
          const all = Buffer.concat(pending);
          const part = all.subarray(0, this.partSize);
          pending = [all.subarray(this.partSize)];
          pendingBytes = pending[0].length;
          uploadId ??= (
            await this.send('start upload of', key, () =>
              this.client.send(new this.sdk.CreateMultipartUploadCommand({ Bucket, Key })),
            )
          ).UploadId;
          uploadPart(nextPart++, Buffer.from(part));
          while (inFlight.size >= this.concurrency) await Promise.race(inFlight);
          if (failed) throw failed;
        }
      }
      if (stat.isFile() && total !== stat.size)
        throw new S3StoreError(
          `${this.description}: ${file} changed while it was uploaded (${stat.size} → ${total} bytes)`,
        );
      const last = Buffer.concat(pending);
      if (uploadId === undefined) {
        await this.send('put', key, () =>
          this.client.send(new this.sdk.PutObjectCommand({ Bucket, Key, Body: last, ContentMD5: md5(last) })),
        );
        return;
      }
      if (last.length) uploadPart(nextPart++, last);
      await Promise.all(inFlight);
      if (failed) throw failed;
      parts.sort((a, b) => a.PartNumber - b.PartNumber);
      await this.send('complete upload of', key, () =>
        this.client.send(
          new this.sdk.CompleteMultipartUploadCommand({
            Bucket,
            Key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
          }),
        ),
      );
    } catch (error) {
      if (uploadId !== undefined) {
        await Promise.allSettled(inFlight);
        const abort = new this.sdk.AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId });
        await this.client.send(abort).catch(() => undefined);
      }
      if (error instanceof SlipwayError) throw error;
      throw new S3StoreError(secrets.redact(`${this.description}: reading ${file}: ${(error as Error).message}`));
    }
  }

  async getText(key: string): Promise<string | undefined> {
    const Key = this.objectKey(key);
    try {
      const result = await this.client.send(new this.sdk.GetObjectCommand({ Bucket: this.config.bucket, Key }));
      return await result.Body!.transformToString('utf8');
    } catch (error) {
      const e = error as SdkError;
      if (e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) return undefined;
      throw this.failure('get', key, error);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const base = this.config.prefix ? `${this.config.prefix}/` : '';
    const keys: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await this.send('list', prefix || '/', () =>
        this.client.send(
          new this.sdk.ListObjectsV2Command({ Bucket: this.config.bucket, Prefix: base + prefix, ContinuationToken }),
        ),
      );
      for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key.slice(base.length));
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return keys.sort();
  }

  async remove(key: string): Promise<void> {
    const Key = this.objectKey(key);
    await this.send('remove', key, () =>
      this.client.send(new this.sdk.DeleteObjectCommand({ Bucket: this.config.bucket, Key })),
    );
  }

  /** A presigned GET URL, valid for an hour: the host needs no credential, and holds none afterwards. */
  async sourceForHost(key: string): Promise<HostSource> {
    const command = new this.sdk.GetObjectCommand({ Bucket: this.config.bucket, Key: this.objectKey(key) });
    return { url: await this.presign(this.client, command, { expiresIn: PRESIGNED_SECONDS }) };
  }
}

/**
 * Opens the store with the credentials in `env` (the process environment with .env's values): both
 * AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN if set), redacted from all output
 * from here on. Missing ones are a config error (exit 2).
 */
export async function openS3Store(
  config: S3StoreConfig,
  env: Record<string, string | undefined>,
  tuning?: S3Tuning,
): Promise<S3Store> {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  const sessionToken = env.AWS_SESSION_TOKEN || undefined;
  const missing = [!accessKeyId && 'AWS_ACCESS_KEY_ID', !secretAccessKey && 'AWS_SECRET_ACCESS_KEY'].filter(Boolean);
  const where = `s3 store ${config.bucket}${config.prefix ? `/${config.prefix}` : ''}`;
  if (missing.length)
    throw new ConfigError(`${where}: set ${missing.join(' and ')} in the environment or in .env (never in the config)`);
  secrets.add([accessKeyId!, secretAccessKey!, ...(sessionToken ? [sessionToken] : [])]);
  // The pinned SDK runs on Node 20; its warning is about releases after it, which this project does not use.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const sdk = await import('@aws-sdk/client-s3');
  const { getSignedUrl } = await import('@aws-sdk/s3-request-presigner');
  const client = new sdk.S3Client({
    region: config.region ?? env.AWS_REGION ?? 'us-east-1',
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    forcePathStyle: config.forcePathStyle ?? false,
    credentials: { accessKeyId: accessKeyId!, secretAccessKey: secretAccessKey!, sessionToken },
    // Integrity by Content-MD5 on every upload; the SDK's newer default (CRC32 trailers in aws-chunked
    // bodies) is not understood by many S3-compatible servers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return new S3Store(sdk, client, getSignedUrl, config, tuning);
}
