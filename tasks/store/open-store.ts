// The store a config names: one case per store type.
import type { StoreConfig } from '../config/types.js';
import { DirStore } from './dir-store.js';
import { HttpStore } from './http-store.js';
import type { ArtifactStore } from './store.js';

export async function openStore(config: StoreConfig): Promise<ArtifactStore> {
  switch (config.type) {
    case 'dir':
      return new DirStore(config.path);
    case 'http':
      return new HttpStore(config.url);
  }
}
