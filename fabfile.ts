// slipway's tasks for this project: `npx tsx fabfile.ts deploy`, `rollback[:current|:<id>]`, …
// This file is the deploy story; change your deploy by editing it (add a step, a hook, a task).
import {
  type Artifact,
  artifacts,
  artifactToDeploy,
  buildArtifact,
  check,
  checkArtifactsArgs,
  checkLogsArgs,
  checkPromoteArgs,
  checkPullArgs,
  checkRestartConfig,
  checkRollbackArgs,
  checkRunArgs,
  checkSetup,
  checkSshArgs,
  cutover,
  discard,
  drainSlot,
  fetchArtifact,
  healthCheck,
  installConfigs,
  installDependencies,
  listReleases,
  moveTraffic,
  logs,
  mustRun,
  newRelease,
  packRelease,
  promotedArtifact,
  pull,
  purgeReleases,
  type ReleaseArchive,
  restart,
  restartServices,
  rollBackOnFailure,
  rollback,
  runCommand,
  runHooks,
  runTasks,
  setup,
  setupConnection,
  sh,
  startSlot,
  ssh,
  status,
  type TaskRun,
  task,
  unlock,
  upload,
  withNotifications,
  inWaves,
  bake,
  buildRunsOn,
} from './tasks/index.js';

await runTasks(
  {
    // Wrapped: then hooks.onSuccess, or on failure hooks.onFailure (a failing notification only warns).
    deploy: task(
      'Ship the ref to every host: prepare everywhere, then switch',
      withNotifications(async (run) => {
        // With artifacts.store: --artifact <id|latest> from the store, or one built and published now.
        const artifact = await artifactToDeploy(run);
        // Without a store: git archive + template check, before any host changes.
        await ship(run, artifact ?? (await packRelease(run)));
      }),
      { accepts: { waves: true, artifact: true } }, // --waves: ship's inWaves reads it
    ),
    rollback: task(
      'Go back one release; rollback:current to the newest, rollback:<id> to that one',
      withNotifications(rollback),
      { check: checkRollbackArgs },
    ),
    releases: task('List the releases on each host: which is live, when, from which ref', listReleases),
    purge: task('Remove releases beyond keepReleases now', (run) =>
      run.locked('purge', () => run.atEnd('purge', purgeReleases(run))),
    ),
    // Build once, ship the same bytes: the artifact store.
    build: task(
      'Build the release artifact once and publish it to the store (latest last)',
      async (run) => {
        await buildArtifact(run);
      },
      // Its header says where it builds: here, or on the build host (artifacts.buildOn). It needs no connection
      // to the environment's hosts: a CI job can build and publish without SSH access to production.
      { runsOn: buildRunsOn, connects: false },
    ),
    promote: task(
      'promote:<env>: deploy exactly the artifact <env> runs now (same id, same bytes)',
      withNotifications(async (run) => {
        // <env>'s hosts are read while these are being locked: a refusal then only gives the locks back.
        const source = promotedArtifact(run);
        source.catch(() => undefined); // its failure is the deploy's, where ship awaits it
        await ship(run, source);
      }),
      { check: checkPromoteArgs, accepts: { waves: true } },
    ),
    artifacts: task(
      "The store's artifacts: latest, where each runs; artifacts:purge removes those beyond artifacts.keep",
      artifacts,
      { check: checkArtifactsArgs },
    ),
    // Servers: prepare, check, look after.
    setup: task('Prepare fresh hosts as root (setup.user): deploy user, keys, deploy root, helper, sudo rule', setup, {
      check: checkSetup,
      connectAs: setupConnection,
    }),
    check: task(
      'Check the config, hosts, lock state, and that deploy roots, sudo rules, nginx -t and supervisorctl work',
      check,
    ),
    status: task('Per host: live release, supervisor status, nginx config check, health check', status),
    restart: task('Restart the program on every host (and reload nginx)', restart, { check: checkRestartConfig }),
    unlock: task('Print who holds the deploy lock, then remove it', unlock),
    logs: task("The program's stdout/stderr logs per host (logs:200 lines); --follow streams", logs, {
      check: checkLogsArgs,
      accepts: { follow: true },
    }),
    ssh: task('A shell in the live release on one host (ssh:web1); ssh:web1 -- CMD runs CMD', ssh, {
      check: checkSshArgs,
      accepts: { command: true },
      connects: false, // it runs your own OpenSSH client instead
    }),
    run: task('Run a shell command in the live release on the hosts: run:"npm run x"', runCommand, {
      check: checkRunArgs,
    }),
    pull: task("Copy another environment's data here (config data): pull:<from-environment>[,<host>]", pull, {
      check: checkPullArgs,
    }),
    // A task of your own, from the same building blocks: migrations in the live release, on db hosts.
    migrate: task('Run database migrations in the live release on hosts with role db', (run) =>
      run.each(
        'migrate',
        (h) => mustRun(h.host, 'migrate', sh`cd ${h.paths.current} && npm run --if-present migrate`),
        run.withRole('db'),
      ),
    ),
  },
  { root: import.meta.dirname },
);

/** The deploy itself, from the archive built here or from an artifact the hosts fetch from the store. */
async function ship(run: TaskRun, from: ReleaseArchive | Artifact | Promise<Artifact>): Promise<void> {
  // Every host stays locked until this block ends: a step added anywhere in it runs locked.
  await run.locked('deploy', async () => {
    const release = await newRelease(run, await from);
    // All hosts at once, or --rolling N at a time.
    for (const batch of run.batches()) {
      // Until it is live, a failure removes the new release everywhere ('cleanup').
      await batch.undoable(
        async () => {
          // The archive goes up to each host, or each host fetches the artifact from the store itself.
          if (release.artifact) await batch.each('fetch', fetchArtifact(batch, release));
          else await batch.each('upload', upload(batch, release));
          await batch.each('dependencies', installDependencies(batch, release));
          await batch.each('configs', installConfigs(batch, release.id));
          await batch.each('before-switch', runHooks(batch, 'beforeSwitch', release.id));
        },
        'cleanup',
        discard(batch, release),
      );
      // Every host of the batch is ready. Live wave by wave (--waves, rollout.waves; else one wave), the next only
      // once this one passed; past rollout.maxFailures every switched host goes back, the rest never switch.
      await inWaves(batch, release, async (wave) => {
        await wave.undoable(
          async () => {
            // blue-green: the release starts in the idle slot, checked there on every host of the wave; then
            // traffic moves.
            await wave.each('start-slot', startSlot(wave, release.id, 'deploy'));
            await wave.each('move-traffic', moveTraffic(wave));
            await cutover(wave, release.id, release.archive.ref);
          },
          'cleanup',
          discard(wave, release),
        );
        await rollBackOnFailure(wave, release, async () => {
          await wave.each('after-switch', runHooks(wave, 'afterSwitch', release.id));
          await wave.each('restart', restartServices(wave));
          await wave.each('health', healthCheck(wave, release.id));
          await bake(wave, release.id); // rollout.bakeSeconds: the health check keeps passing that long
        });
        // blue-green: the old slot finishes its in-flight requests and stops.
        await wave.each('drain-slot', drainSlot(wave));
      });
    }
    // Queued: runs when the block ends, its command carrying each host's unlock (or first, under the
    // lock, if you add a step after it).
    await run.atEnd('purge', purgeReleases(run));
  });
}
