// The config's schema (zod): the types in types.ts come from it, and it validates a loaded config.
// Kept apart so that zod is loaded only when a task runs, not for --list or --help.
import { z } from 'zod';
import { isPathInRelease, PATH_IN_RELEASE } from '../lib/paths.js';
import { isWaveSize, percentOf, WAVE_SIZES } from './rollout.js';
import { s3StoreSchema } from './s3-store.js';

/** Shared items and a hook's cwd: inside the release, never `..` or absolute. */
const pathInRelease = z
  .string()
  .min(1)
  .refine(isPathInRelease, { error: (issue) => `${PATH_IN_RELEASE}, got "${issue.input}"` });

export const hostSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a host name of letters, digits, ".", "_" and "-"'),
  local: z.literal(true).optional(),
  host: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  user: z.string().min(1).optional(),
  privateKey: z.string().min(1).optional(),
  passphraseEnv: z.string().min(1).optional(),
  roles: z.array(z.string().regex(/^[A-Za-z0-9_-]+$/)).default([]),
  deployTo: z.string().min(1),
});

export const stageSchema = z.strictObject({
  name: z.string().min(1),
  roles: z.array(z.string()).optional(),
  cwd: pathInRelease.optional(),
  /** Exported in the hook's shell: names the shell can export. */
  env: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a variable name of letters, digits and "_"'), z.string())
    .optional(),
  commands: z.array(z.string().min(1)),
});

/**
 * A notification (hooks.onSuccess / hooks.onFailure): commands run after a deploy, on the deployer (in the
 * project's folder) or on each host (in its deploy root), with SLIPWAY_* variables saying what happened.
 */
export const notificationSchema = z.strictObject({
  name: z.string().min(1),
  on: z.enum(['deployer', 'hosts']).default('deployer'),
  roles: z.array(z.string()).optional(),
  env: stageSchema.shape.env,
  commands: z.array(z.string().min(1)),
  /** Seconds a notification may run before it is stopped (a chat that hangs must not hold the deploy up). */
  timeoutSeconds: z.number().positive().max(3600).default(30),
});

const absolutePath = z.string().regex(/^\/[^\0]*$/, 'an absolute path');

const nginxSchema = z.strictObject({
  site: absolutePath.optional(),
  enabled: absolutePath.optional(),
  test: z.string().min(1).optional(),
  reload: z.string().min(1).optional(),
});

const supervisorSchema = z.strictObject({
  program: absolutePath.optional(),
  ctl: z.string().min(1).optional(),
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'a program name of letters, digits, ".", "_" and "-"')
    .optional(),
});

export const servicesSchema = z
  .strictObject({
    /** Prefix for commands that touch the system, e.g. "sudo -n" (with `helper`: "sudo -n" unless set). */
    sudo: z.string().optional(),
    /** The root-owned install helper (server/slipway-services): paths and commands are then its config's. */
    helper: z
      .string()
      .regex(/^\/[A-Za-z0-9._/-]+$/, 'an absolute path like /usr/local/sbin/slipway-services')
      .optional(),
    nginx: z.union([z.literal(false), nginxSchema]).optional(),
    supervisor: z.union([z.literal(false), supervisorSchema]).optional(),
  })
  .superRefine((services, ctx) => {
    if (!services.helper) return;
    // The helper takes nothing but a release id: what it installs where is fixed by root in
    // /etc/slipway/<application>.conf.
    for (const [section, keys] of [
      ['nginx', services.nginx],
      ['supervisor', services.supervisor],
    ] as const) {
      for (const key of Object.keys(keys || {})) {
        const message = "set by the helper's own config (/etc/slipway/<application>.conf) when services.helper is set";
        ctx.addIssue({ code: 'custom', path: [section, key], message });
      }
    }
  });

export const healthcheckSchema = z
  .strictObject({
    url: z.url(),
    expectStatus: z.number().int().min(100).max(599).default(200),
    expectBody: z.string().optional(),
    timeoutSeconds: z.number().positive().default(30),
    /** Good answers in a row (from one process that supervisor calls RUNNING) before the release counts as healthy. */
    successes: z.number().int().min(1).max(100).default(2),
    /** Seconds between those answers: a release that crashes within (successes − 1) × intervalSeconds is caught. */
    intervalSeconds: z.number().positive().max(300).default(1),
  })
  .refine((c) => c.timeoutSeconds >= (c.successes - 1) * c.intervalSeconds, {
    path: ['timeoutSeconds'],
    error: (issue) => {
      const c = issue.input as { successes: number; intervalSeconds: number };
      const least = (c.successes - 1) * c.intervalSeconds;
      return `must be at least (successes − 1) × intervalSeconds = ${least} s, the time the answers in a row take`;
    },
  });

/** How traffic moves to a new release: restart in place (today's), or blue-green slots side by side. */
export const cutoverSchema = z
  .strictObject({
    strategy: z.enum(['restart', 'blue-green']),
    /** blue-green: the slots listen on unix sockets <deployTo>/run/<slot>.sock (default) or on ports[0] / ports[1]. */
    listen: z.enum(['socket', 'port']).optional(),
    ports: z.tuple([z.number().int().min(1).max(65535), z.number().int().min(1).max(65535)]).optional(),
    /** blue-green: seconds the old slot gets to finish its in-flight requests after SIGTERM (stopwaitsecs). */
    drainSeconds: z.number().int().min(1).max(3600).optional(),
  })
  .superRefine((c, ctx) => {
    if (c.listen === 'port' && !c.ports)
      ctx.addIssue({ code: 'custom', path: ['ports'], message: "listen: 'port' needs ports: [blue, green]" });
    if (c.ports && c.ports[0] === c.ports[1])
      ctx.addIssue({ code: 'custom', path: ['ports'], message: 'the two slots need two different ports' });
    if (c.ports && c.listen !== 'port')
      ctx.addIssue({ code: 'custom', path: ['ports'], message: "only used with listen: 'port'" });
  });

const waveSize = z.union([z.number(), z.string()]).refine(isWaveSize, { error: WAVE_SIZES });

/** Waves, bake and failure budget of a deploy (see rollout.ts and steps/rollout.ts). */
export const rolloutSchema = z.strictObject({
  /** Cumulative: each figure is how many hosts are on the new release once its wave is done. */
  waves: z.array(waveSize).min(1, 'at least one wave, as in [1, "10%", "100%"]').optional(),
  /** Seconds each wave's health check must keep passing before the next wave starts. */
  bakeSeconds: z.number().min(0).max(3600).optional(),
  /** Hosts that may fail across the whole rollout (a count or a percentage of the hosts) before it stops. */
  maxFailures: z
    .union([z.number(), z.string()])
    .refine((v) => (typeof v === 'number' ? Number.isInteger(v) && v >= 0 : percentOf(v, true) !== undefined), {
      error: 'a host count ≥ 0 or a percentage of the hosts from "0%" to "100%"',
    })
    .optional(),
});

const helperPath = z.string().regex(/^\/[^\0\n\r]*$/, 'an absolute path on one line');
const helperLine = z.string().regex(/^[^\0\n\r]+$/, 'a command on one line');

/**
 * How `setup` prepares a host (tasks/builtin/setup.ts): as whom it connects, the deploy user's public keys,
 * and, with services.helper, the helper's own root-owned config (/etc/slipway/<application>.conf).
 */
export const setupSchema = z.strictObject({
  /** The admin user setup connects as: root, or a user with passwordless sudo (default root). */
  user: z.string().min(1).optional(),
  /** Its key (default: the host's privateKey, else ssh-agent / ~/.ssh/config). */
  privateKey: z.string().min(1).optional(),
  passphraseEnv: z.string().min(1).optional(),
  /** Public key files (.pub) authorized for the deploy user (default: each host's privateKey + ".pub"). */
  authorizedKeys: z.array(z.string().min(1)).min(1).optional(),
  /** The helper's config, where the host's nginx and supervisor differ from Debian's (one line each: key=value). */
  helper: z
    .strictObject({
      site: helperPath.optional(),
      enabled: helperPath.optional(),
      nginxTest: helperLine.optional(),
      nginxReload: helperLine.optional(),
      programFile: helperPath.optional(),
      supervisorctl: helperLine.optional(),
      allowedPaths: z.array(helperPath.regex(/^\S+$/, 'a path without spaces')).optional(),
      stateDir: helperPath.optional(),
    })
    .optional(),
});

/**
 * What `pull` copies from an environment's host (paths in its shared dir), and a dump command whose output it
 * copies into `dump.file`. No item may lie inside another: each is replaced whole.
 */
export const dataSchema = z
  .strictObject({
    dirs: z.array(pathInRelease).optional(),
    files: z.array(pathInRelease).optional(),
    dump: z.strictObject({ command: z.string().min(1), file: pathInRelease }).optional(),
  })
  .superRefine((data, ctx) => {
    const items = [...(data.dirs ?? []), ...(data.files ?? []), ...(data.dump ? [data.dump.file] : [])];
    if (!items.length) ctx.addIssue({ code: 'custom', message: 'give dirs, files or dump: what pull copies' });
    for (const [i, a] of items.entries()) {
      const b = items.find((other, j) => j !== i && (other === a || a.startsWith(`${other}/`)));
      if (b) ctx.addIssue({ code: 'custom', message: `"${a}" is ${a === b ? 'listed twice' : `inside "${b}"`}` });
    }
  });

/** Where `build` publishes artifacts and hosts fetch them from (tasks/store/). */
export const storeSchema = z.discriminatedUnion('type', [
  /** A local or mounted folder; hosts read the same path (relative: to the project root). */
  z.strictObject({ type: z.literal('dir'), path: z.string().min(1) }),
  /** A WebDAV-capable server (nginx with dav_methods PUT DELETE): PUT to publish, GET to fetch. */
  z.strictObject({
    type: z.literal('http'),
    url: z.url({ protocol: /^https?$/ }).refine((url) => !/^[a-z]+:\/\/[^/]*@/i.test(url), {
      error: 'no user or password in the URL: hosts fetch it as it is; restrict PUT/DELETE on the server instead',
    }),
  }),
  /** Any S3-compatible service: the deployer holds the credentials, hosts fetch through presigned URLs. */
  s3StoreSchema,
]);

export const artifactsSchema = z.strictObject({
  store: storeSchema.optional(),
  /** 'host': each host installs from the lockfile (default); 'prebuilt': built once on the deployer, shipped in. */
  dependencies: z.enum(['host', 'prebuilt']).optional(),
  /** Artifacts kept per environment by the `artifacts` task's purge (never one that is live anywhere). */
  keep: z.number().int().min(1).optional(),
  /** 'prebuilt': the environment is built on the first host with this role instead of the deployer. */
  buildOn: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'a role name of letters, digits, "_" and "-"')
    .optional(),
});

/**
 * Keys that may be set at the top level and overridden per environment. Their defaults are applied
 * once, by load.ts, after an environment's keys are merged over the top level's: a zod default here
 * would fill an environment's unset key and override the top level.
 */
export const settings = {
  application: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'a name matching [a-z0-9][a-z0-9-]*'),
  repository: z.string().min(1),
  ref: z.string().min(1),
  subdirectory: z.string().min(1),
  keepReleases: z.number().int().min(1),
  dependencies: z.strictObject({ type: z.enum(['node', 'python', 'none']) }),
  shared: z.strictObject({
    files: z.array(pathInRelease).optional(),
    dirs: z.array(pathInRelease).optional(),
  }),
  templates: z.strictObject({
    dir: z.string().optional(),
    nginx: z.boolean().optional(),
    supervisor: z.boolean().optional(),
  }),
  vars: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  port: z.number().int().min(1).max(65535),
  serverName: z.string().min(1),
  runAs: z.string().min(1),
  hooks: z.strictObject({
    beforeSwitch: z.array(stageSchema).optional(),
    afterSwitch: z.array(stageSchema).optional(),
    onSuccess: z.array(notificationSchema).optional(),
    onFailure: z.array(notificationSchema).optional(),
  }),
  parallel: z.number().int().min(1),
  knownHosts: z.string().min(1),
  connectTimeoutSeconds: z.number().positive(),
  /** Seconds to keep SSH connections open after a run, for the next one (0: close them with the run). */
  keepConnections: z.number().int().min(0),
  /** Seconds a kept connection (and the key the broker holds for it) lives at most. */
  keepConnectionsMaxAge: z.number().int().min(1).max(86_400),
  services: servicesSchema,
  healthcheck: healthcheckSchema,
  cutover: cutoverSchema,
  rollout: rolloutSchema,
  /** SSH connections being opened at once (default 50); each bounded by connectTimeoutSeconds. */
  maxConnects: z.number().int().min(1).max(1000),
  data: dataSchema,
  setup: setupSchema,
  artifacts: artifactsSchema,
  /** Delta releases: a host with a verified earlier release gets only what changed (default true). */
  delta: z.boolean(),
};

const environmentSchema = z.strictObject({
  hosts: z.array(hostSchema).min(1),
  ...Object.fromEntries(Object.entries(settings).map(([k, s]) => [k, s.optional()])),
  /** `pull` writes into it only with --yes, or when confirmed on a terminal. */
  protected: z.boolean().optional(),
}) as z.ZodType<
  { hosts: z.input<typeof hostSchema>[] } & Partial<{ [K in keyof typeof settings]: z.input<(typeof settings)[K]> }> & {
      protected?: boolean;
    }
>;

export const fileSchema = z.strictObject({
  application: settings.application,
  repository: settings.repository.optional(),
  ref: settings.ref.optional(),
  subdirectory: settings.subdirectory.optional(),
  keepReleases: settings.keepReleases.optional(),
  dependencies: settings.dependencies.optional(),
  shared: settings.shared.optional(),
  templates: settings.templates.optional(),
  vars: settings.vars.optional(),
  port: settings.port.optional(),
  serverName: settings.serverName.optional(),
  runAs: settings.runAs.optional(),
  hooks: settings.hooks.optional(),
  parallel: settings.parallel.optional(),
  knownHosts: settings.knownHosts.optional(),
  connectTimeoutSeconds: settings.connectTimeoutSeconds.optional(),
  keepConnections: settings.keepConnections.optional(),
  keepConnectionsMaxAge: settings.keepConnectionsMaxAge.optional(),
  services: settings.services.optional(),
  healthcheck: settings.healthcheck.optional(),
  cutover: settings.cutover.optional(),
  rollout: settings.rollout.optional(),
  maxConnects: settings.maxConnects.optional(),
  data: settings.data.optional(),
  setup: settings.setup.optional(),
  artifacts: settings.artifacts.optional(),
  delta: settings.delta.optional(),
  environments: z.record(
    z.string().regex(/^[A-Za-z0-9_-]+$/, 'an environment name of letters, digits, "_" and "-"'),
    environmentSchema,
  ),
  defaultEnvironment: z.string().optional(),
});

export function formatIssues(error: z.ZodError, file: string): string {
  const lines = error.issues.map((issue) => {
    const where = issue.path.length ? issue.path.join('.') : '(top level)';
    if (issue.code === 'unrecognized_keys') {
      return `  ${issue.keys.map((k) => (issue.path.length ? `${where}.${k}` : k)).join(', ')}: unknown key`;
    }
    // A record's key: zod's own message is "Invalid key in record"; what the key should be is in its issues.
    if (issue.code === 'invalid_key') return `  ${where}: ${issue.issues.map((i) => i.message).join('; ')}`;
    return `  ${where}: ${issue.message}`;
  });
  return `invalid config ${file}:\n${lines.join('\n')}`;
}
