// What a deploy.config.ts imports. defineConfig only gives the editor the schema's types: it has no
// runtime imports, so evaluating a config loads nothing else (load.ts validates it afterwards).
import type { SlipwayConfig } from './types.js';

export function defineConfig(config: SlipwayConfig): SlipwayConfig {
  return config;
}
