// The config's TypeScript types, as given by the zod schema (schema.ts) and after loading (ResolvedConfig).
import type { z } from 'zod';
import type { fileSchema, healthcheckSchema, hostSchema, stageSchema } from './schema.js';

export type SlipwayConfig = z.input<typeof fileSchema>;

export type HostConfig = z.output<typeof hostSchema>;

export type Stage = z.output<typeof stageSchema>;

export interface Services {
  sudo: string;
  /**
   * Set: every privileged action is `<sudo> <command> <application> <subcommand> [release id]`
   * (server/slipway-services).
   */
  helper?: { command: string; application: string };
  nginx?: { site: string; enabled: string; test: string; reload: string };
  supervisor?: { program: string; ctl: string; name: string };
}

export interface ResolvedConfig {
  application: string;
  repository: string;
  ref: string;
  subdirectory?: string;
  keepReleases: number;
  dependencies: { type: 'node' | 'python' | 'none' };
  shared: { files: string[]; dirs: string[] };
  templates: { dir: string; nginx: boolean; supervisor: boolean };
  vars: Record<string, string | number | boolean>;
  port: number;
  serverName: string;
  runAs?: string;
  hooks: { beforeSwitch: Stage[]; afterSwitch: Stage[] };
  parallel?: number;
  knownHosts?: string;
  connectTimeoutSeconds: number;
  /** Seconds to keep SSH connections open after a run, for the next one (0: close them with the run). */
  keepConnections: number;
  /**
   * Seconds a kept connection (and the key the broker holds for it) lives at most; then runs connect directly
   * and a new broker takes over.
   */
  keepConnectionsMaxAge: number;
  services?: Services;
  healthcheck?: z.output<typeof healthcheckSchema>;
  environment: string;
  hosts: HostConfig[];
  /** Values read from .env files: usable in templates, never printed. */
  env: Record<string, string>;
  projectRoot: string;
}

export type DependencyType = ResolvedConfig['dependencies']['type'];
