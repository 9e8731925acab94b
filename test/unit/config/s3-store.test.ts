// The s3 artifact store's config schema (tasks/config/s3-store.ts): what a bucket, prefix and endpoint may be.
import { describe, expect, it } from 'vitest';
import { s3StoreSchema } from '../../../tasks/config/s3-store.js';

describe('s3StoreSchema', () => {
  it('the s3 store schema: bucket, prefix and endpoint rules; no credentials in the endpoint', async () => {
    const good = { type: 's3', bucket: 'my-builds', prefix: 'team/app', endpoint: 'https://s3.example.com' };
    expect(s3StoreSchema.parse(good)).toEqual(good);
    const issues = (value: object) =>
      s3StoreSchema.safeParse({ ...good, ...value }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues({ bucket: 'My_Builds' })).toEqual([expect.stringMatching(/^bucket: an S3 bucket name/)]);
    for (const prefix of ['/team', 'team/', 'a/../b', 'a//b'])
      expect(issues({ prefix })).toEqual([expect.stringMatching(/^prefix: a key prefix/)]);
    expect(issues({ endpoint: 'https://key:secret@s3.example.com' })).toEqual([
      expect.stringMatching(/^endpoint: a URL without user or password/),
    ]);
    expect(issues({ accessKeyId: 'AKIA' })).toEqual([expect.stringContaining('Unrecognized key')]);
  });
});
