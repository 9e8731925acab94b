// Task `releases`: each host's releases, the live one and the bad ones.
import type { TaskRun } from '../fleet/task-run.js';

export async function listReleases(run: TaskRun): Promise<void> {
  await run.inspect();
  for (const h of run.hosts) {
    const rows = [...h.state.releases].reverse().map((id) => {
      const meta = h.state.meta[id];
      return {
        id,
        live: id === h.state.live,
        deployedAt: meta?.deployedAt ?? null,
        ref: meta?.ref ?? null,
        commit: meta?.commit ?? null,
        status: meta?.status ?? 'unknown',
        reason: meta?.reason,
      };
    });
    h.report.releases = rows;
    h.report.live = h.state.live;
    run.log.line(`${h.host.name} (${h.paths.root}):${rows.length ? '' : ' no releases'}`);
    for (const r of rows) {
      const mark = r.live ? '*' : ' ';
      const bad = r.status === 'bad' ? `  BAD${r.reason ? `: ${r.reason}` : ''}` : '';
      run.log.line(`  ${mark} ${r.id}  ${r.deployedAt ?? '?'}  ref ${r.ref ?? '?'}${bad}`);
    }
  }
}
