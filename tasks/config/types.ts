// The config's TypeScript types, as given by the zod schema (schema.ts) and after loading (ResolvedConfig).
import type { z } from 'zod';
import type { fileSchema, hostSchema, notificationSchema, settings, stageSchema, storeSchema } from './schema.js';

export type SlipwayConfig = z.input<typeof fileSchema>;

export type HostConfig = z.output<typeof hostSchema>;

export type Stage = z.output<typeof stageSchema>;

export type Notification = z.output<typeof notificationSchema>;

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

/** `setup` with its defaults applied (load.ts): as whom it connects, and the helper's config it writes. */
export interface SetupConfig {
  user: string;
  privateKey?: string;
  passphraseEnv?: string;
  /** Public key files for the deploy user; unset: each host's privateKey + ".pub". */
  authorizedKeys?: string[];
  helper: {
    site: string;
    enabled: string;
    nginxTest: string;
    nginxReload: string;
    programFile: string;
    supervisorctl: string;
    allowedPaths: string[];
    stateDir: string;
  };
}

/** The settings as the schema gives them (an environment's override merged over the top level's). */
type Settings = { [K in keyof typeof settings]: z.output<(typeof settings)[K]> };

/**
 * The config after loading (load.ts): the settings, every default applied, for one environment.
 * Not the schema's own shape where loading resolves a key into what the steps use: `templates`
 * (an absolute dir, both flags set) and `services` (each path and command filled in).
 */
export type ResolvedConfig = Pick<
  Settings,
  | 'application'
  | 'repository'
  | 'ref'
  | 'keepReleases'
  | 'dependencies'
  | 'vars'
  | 'port'
  | 'serverName'
  | 'connectTimeoutSeconds'
  | 'keepConnections'
  | 'keepConnectionsMaxAge'
> &
  Partial<
    Pick<Settings, 'subdirectory' | 'runAs' | 'parallel' | 'knownHosts' | 'healthcheck' | 'rollout' | 'maxConnects'>
  > & {
    shared: Required<Settings['shared']>;
    hooks: Required<Settings['hooks']>;
    templates: { dir: string; nginx: boolean; supervisor: boolean };
    services?: Services;
    environment: string;
    hosts: HostConfig[];
    /** Values read from .env files: usable in templates, never printed. */
    env: Record<string, string>;
    projectRoot: string;
    /** The config file this was loaded from (a task may load another environment of it: pull). */
    configFile: string;
    /** What `pull` copies from this environment's hosts (paths in the shared dir). */
    data?: { dirs: string[]; files: string[]; dump?: { command: string; file: string } };
    /** `pull` writes into this environment only with --yes or a confirmation on a terminal. */
    protected: boolean;
    setup: SetupConfig;
    cutover: Cutover;
    /** Every environment the config names (this one is `environment`). */
    environments: string[];
    /** Set when the config has `artifacts`: every default applied, a dir store's path absolute. */
    artifacts?: ArtifactsConfig;
    /** Delta releases (default true): upload only what changed since a verified release on the host. */
    delta: boolean;
  };

/** The cutover after loading: restart (in place), or blue-green with its listen mode and drain time. */
export type Cutover =
  | { strategy: 'restart' }
  | { strategy: 'blue-green'; listen: 'socket' | 'port'; ports?: [number, number]; drainSeconds: number };

export type StoreConfig = z.output<typeof storeSchema>;

export interface ArtifactsConfig {
  store: StoreConfig;
  dependencies: 'host' | 'prebuilt';
  keep: number;
  /** The role artifacts.buildOn names, and the host of it that builds the prebuilt environment. */
  buildOn?: { role: string; host: HostConfig };
}

export type DependencyType = ResolvedConfig['dependencies']['type'];
