// The `s3` artifact store's config (zod): one member of `artifacts.store`. Credentials are never config keys:
// they come from the environment or .env (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).
import { z } from 'zod';

/** S3's bucket naming rules (3–63 characters, lower case, digits, "." and "-", a letter or digit at each end). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Key segments of letters, digits and `._-`, joined by "/": no leading or trailing "/", no ".." segment. */
const PREFIX = /^(?!.*(^|\/)\.\.?(\/|$))[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

export const s3StoreSchema = z.strictObject({
  type: z.literal('s3'),
  bucket: z.string().regex(BUCKET, 'an S3 bucket name: 3–63 characters of a-z, 0-9, "." and "-"'),
  /** Every key the store writes starts with `<prefix>/`. */
  prefix: z
    .string()
    .regex(PREFIX, 'a key prefix like "builds" or "team/builds" (no leading or trailing "/")')
    .optional(),
  /** An S3-compatible service's URL (default: AWS's endpoint for the region). */
  endpoint: z
    .url({ protocol: /^https?$/ })
    .refine((url) => !/^[a-z]+:\/\/[^/]*@/i.test(url), 'a URL without user or password (credentials go in .env)')
    .optional(),
  /** Default: AWS_REGION from the environment, else us-east-1. */
  region: z
    .string()
    .regex(/^[a-z0-9-]+$/, 'a region name like "eu-west-1"')
    .optional(),
  /** `http://endpoint/bucket/key` instead of `http://bucket.endpoint/key` (most S3-compatible servers want it). */
  forcePathStyle: z.boolean().optional(),
});

export type S3StoreConfig = z.output<typeof s3StoreSchema>;
