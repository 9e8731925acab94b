// slipway's public entry: what a fabfile uses (defineConfig for deploy.config.ts too). Nothing else
// under tasks/ is imported from outside it. Keep lazily loaded modules (hosts/ssh-host.ts,
// config/schema.ts) out of this file: a static export of them would load them on every start.
export { runTasks, task } from './cli/main.js';
export type { TaskDefinition } from './cli/main.js';
export { defineConfig } from './config/define-config.js';
export type { HostConfig, ResolvedConfig, Services, SlipwayConfig, Stage } from './config/types.js';
export type { HostRun, StepOutcome } from './fleet/host-run.js';
export type { TaskRun } from './fleet/task-run.js';
export { CommandFailed, mustRun } from './hosts/host.js';
export type { ExecOptions, ExecResult, Host } from './hosts/host.js';
export { ConfigError, SlipwayError, UsageError } from './lib/errors.js';
export { quote, raw, script, sh } from './lib/sh.js';
export type { Shell } from './lib/sh.js';
export type { Release, ReleaseArchive } from './release/archive.js';
export type { Artifact } from './store/artifacts.js';
// The steps, in the order a deploy runs them.
export { packRelease } from './steps/pack.js';
export { artifactToDeploy } from './steps/artifact.js';
export { buildArtifact, buildRunsOn } from './steps/build.js';
export { newRelease } from './steps/new-release.js';
export { upload } from './steps/upload.js';
export { fetchArtifact } from './steps/fetch.js';
export { installDependencies } from './steps/dependencies.js';
export { installConfigs } from './steps/configs.js';
export { runHooks } from './steps/hooks.js';
export { cutover, switchTo } from './steps/switch.js';
export { discard } from './steps/cleanup.js';
export { rollBackOnFailure } from './steps/auto-rollback.js';
export { restartServices } from './steps/restart.js';
export { healthCheck } from './steps/health.js';
export { purgeReleases } from './steps/purge.js';
// blue-green's steps (skipped under the restart strategy), in the order a deploy runs them.
export { startSlot } from './steps/start-slot.js';
export { moveTraffic } from './steps/move-traffic.js';
export { drainSlot } from './steps/drain-slot.js';
export { withNotifications } from './steps/notify.js';
// The built-in tasks.
export { checkRollbackArgs, rollback } from './builtin/rollback.js';
export { listReleases } from './builtin/releases.js';
export { check } from './builtin/check.js';
export { unlock } from './builtin/unlock.js';
export { checkRestartConfig, restart } from './builtin/restart.js';
export { status } from './builtin/status.js';
export { checkLogsArgs, logs } from './builtin/logs.js';
export { checkSshArgs, ssh } from './builtin/ssh.js';
export { checkRunArgs, runCommand } from './builtin/run-command.js';
export { inWaves, RolloutIncomplete } from './steps/rollout.js';
export { bake } from './steps/bake.js';
export { checkPullArgs, pull } from './builtin/pull.js';
// Artifact stores.
export type { ArtifactStore, HostSource } from './store/store.js';
export { openS3Store } from './store/s3.js';
export { checkSetup, setup, setupConnection } from './builtin/setup.js';
export { checkPromoteArgs, promotedArtifact } from './builtin/promote.js';
export { artifacts, checkArtifactsArgs } from './builtin/artifacts.js';
