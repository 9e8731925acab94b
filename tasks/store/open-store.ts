// The store a config names: one case per store type. `env` is where a store's credentials come from: the
// environment, then .env's values (never the config itself).
import type { ResolvedConfig, StoreConfig } from '../config/types.js';
import { ConfigError } from '../lib/errors.js';
import { secrets } from '../lib/redact.js';
import { DirStore } from './dir-store.js';
import { HttpStore } from './http-store.js';
import { openS3Store } from './s3.js';
import type { ArtifactStore } from './store.js';

export async function openStore(config: StoreConfig, env: Record<string, string | undefined>): Promise<ArtifactStore> {
  switch (config.type) {
    case 'dir':
      return new DirStore(config.path);
    case 'http':
      return new HttpStore(config.url, httpAuth(env));
    case 's3':
      return openS3Store(config, env);
  }
}

/** SLIPWAY_STORE_AUTH, "user:password" for an http store's PUT/DELETE; redacted from all output from here on. */
function httpAuth(env: Record<string, string | undefined>): string | undefined {
  const auth = env.SLIPWAY_STORE_AUTH;
  if (!auth) return undefined;
  if (!auth.includes(':')) throw new ConfigError('SLIPWAY_STORE_AUTH: expected "user:password"');
  secrets.add([auth, auth.slice(auth.indexOf(':') + 1), Buffer.from(auth).toString('base64')]);
  return auth;
}

/** The values a store's credentials are read from: the process environment over the config's .env files. */
export function storeEnv(config: ResolvedConfig): Record<string, string | undefined> {
  return { ...config.env, ...process.env };
}
