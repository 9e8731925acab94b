// `check` on the build host of artifacts.buildOn (a build-only host is none of the run's hosts): it answers over SSH
// with a known host key, node and npm are on the user's PATH, its TMPDIR is writable. Each ✗ with its fix.
import type { TaskRun } from '../fleet/task-run.js';
import { HostsUnreachable } from '../hosts/connect.js';
import { mustRun } from '../hosts/host.js';
import { SlipwayError } from '../lib/errors.js';
import { buildHostCheckScript, buildHostVerdicts } from '../scripts/build.js';
import { sshFix, type Verdict } from '../scripts/check.js';
import { onBuildHost } from '../steps/build-on-host.js';

/** What to do about a build host `check` could not connect to: as for any host, but `setup` does not prepare it. */
function buildSshFix(message: string, user: string | undefined): string {
  if (/authentication methods failed|permission denied/i.test(message))
    return (
      `${user ?? 'the user'} or its key is not set up there (setup does not prepare a build host): ` +
      'add the key to its ~/.ssh/authorized_keys, or check privateKey'
    );
  return sshFix(message, user);
}

/** Checks the build host, printing its verdicts; throws when any is ✗. */
export async function checkBuildHost(run: TaskRun): Promise<void> {
  const config = run.config.artifacts?.buildOn?.host;
  if (!config) return;
  const user = config.user ?? 'the user';
  let verdicts: Verdict[] = [];
  try {
    await onBuildHost(run, (builder, target) =>
      builder.each(
        'build host',
        async (h) => {
          const output = await mustRun(h.host, 'checking the build host', buildHostCheckScript(), { readonly: true });
          const ssh = `${h.host.address}, host key verified (known_hosts)`;
          verdicts = [{ name: 'ssh', ok: true, detail: ssh }, ...buildHostVerdicts(output, user)];
          const failed = verdicts.filter((v) => v.ok === false);
          if (failed.length)
            throw new Error(`${config.name}: ${failed.map((v) => v.name).join(', ')} failed (see the ✗ lines)`);
          return `build host (artifacts.buildOn: '${run.config.artifacts?.buildOn?.role}'): node, npm, TMPDIR`;
        },
        [target],
      ),
    );
  } catch (error) {
    if (!(error instanceof HostsUnreachable)) throw error;
    // A build host that is one of the run's hosts too: its ✗ ssh is among theirs already.
    if (run.hosts.some((h) => h.config.name === config.name)) return;
    const own = `${config.name}: `;
    const message = error.message.startsWith(own) ? error.message.slice(own.length) : error.message;
    verdicts = [{ name: 'ssh', ok: false, detail: message, fix: buildSshFix(message, config.user) }];
    throw new SlipwayError(`check: cannot connect to the build host (see the ✗ lines):\n${error.message}`);
  } finally {
    for (const v of verdicts) run.log.verdict(config.name, v.name, v.ok, v.detail, v.fix);
  }
}
