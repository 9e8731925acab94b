// Task `releases`: each host's releases, the live one and the bad ones.
import type { TaskRun } from '../fleet/task-run.js';
import type { SlotState } from '../release/state.js';
import { SLOTS } from '../release/templates.js';

/** blue-green: which slot is live on which release, and an operation a run left unfinished. */
export function describeSlots(slots: SlotState): string {
  const each = SLOTS.map((s) => `${s} ${slots[s] ?? '(empty)'}${s === slots.live ? ' (live)' : ''}`);
  const op = slots.operation;
  const unfinished = op
    ? `; unfinished: ${op.action} of ${op.release} into ${op.slot}, at ${op.step} since ${op.at} ` +
      '(the next run recovers)'
    : '';
  return `slots: ${each.join(', ')}${unfinished}`;
}

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
    const slots = h.state.slots;
    if (slots) h.report.slots = slots;
    run.log.line(`${h.host.name} (${h.paths.root}):${rows.length ? '' : ' no releases'}`);
    for (const r of rows) {
      const mark = r.live ? '*' : ' ';
      const bad = r.status === 'bad' ? `  BAD${r.reason ? `: ${r.reason}` : ''}` : '';
      // blue-green: the slot(s) the release is in.
      const inSlots = SLOTS.filter((s) => slots?.[s] === r.id).map((s) => (s === slots?.live ? `${s}, live` : s));
      const where = inSlots.length ? `  [${inSlots.join('; ')}]` : '';
      run.log.line(`  ${mark} ${r.id}  ${r.deployedAt ?? '?'}  ref ${r.ref ?? '?'}${bad}${where}`);
    }
    if (slots) run.log.line(`  ${describeSlots(slots)}`);
  }
}
