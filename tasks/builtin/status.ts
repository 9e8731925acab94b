// Task `status`: the program's supervisor status and health on each host.
import type { TaskRun } from '../fleet/task-run.js';
import { script, sh } from '../lib/sh.js';
import { checkFor, healthCheckScript } from '../scripts/health.js';
import { programStatusCommand, statusCommands } from '../scripts/services.js';
import { portOf, slotCheck } from '../scripts/slots.js';
import { describeSlots } from './releases.js';

/**
 * Which of status's facts say something is wrong:
 * The program not RUNNING, nginx -t failing, the health check failing.
 */
export function failedFacts(facts: Record<string, string>): string[] {
  const bad: Record<string, (v: string) => boolean> = {
    supervisor: (v) => !/^\S+\s+RUNNING\b/.test(v),
    nginx: (v) => !v.startsWith('config ok'),
    health: (v) => !v.startsWith('ok'),
  };
  return Object.entries(facts)
    .filter(([k, v]) => bad[k]?.(v))
    .map(([k]) => k);
}

/**
 * The `status` task: live release, supervisor's view, nginx's config check and one health check per host;
 * exit 1 if any fails.
 */
export async function status(run: TaskRun): Promise<void> {
  await run.inspect();
  const services = run.config.services;
  const check = run.config.healthcheck;
  await run.each('status', async (h) => {
    const commands = services && statusCommands(services);
    // blue-green: the live slot's program, checked on its own socket.
    const cutover = run.config.cutover;
    const slot = cutover.strategy === 'blue-green' ? (h.state.slots?.live ?? undefined) : undefined;
    const port = slot && cutover.strategy === 'blue-green' ? portOf(cutover, slot) : undefined;
    const supervisor =
      services?.supervisor && slot ? programStatusCommand(services, services.supervisor, slot) : undefined;
    // One answer is enough here: status reports the moment, it does not judge a release.
    const one = check && { ...checkFor(check, h.state.live ?? ''), timeoutSeconds: 1, successes: 1 };
    const once = one && healthCheckScript(slot ? slotCheck(one, h.paths.root, slot, port) : one, services, slot);
    const lines = script(
      supervisor
        ? sh`echo "@@supervisor $(${supervisor} 2>&1 | head -n 1)"`
        : commands?.supervisor
          ? sh`echo "@@supervisor $(${commands.supervisor} 2>&1 | head -n 1)"`
          : undefined,
      commands?.nginxTest
        ? script(
            sh`if ${commands.nginxTest} >/dev/null 2>&1; then`,
            sh`  echo "@@nginx config ok"`,
            sh`else`,
            sh`  echo "@@nginx config FAILS nginx -t"`,
            sh`fi`,
          )
        : undefined,
      once &&
        script(
          sh`if out=$( ( ${once} ) 2>&1); then`,
          sh`  echo "@@health ok: \${out#@@healthy }"`,
          sh`else`,
          sh`  echo "@@health FAILED: $out"`,
          sh`fi`,
        ),
      sh`true`,
    );
    const output = (await h.host.exec(lines, { readonly: true })).stdout;
    const facts = Object.fromEntries([...output.matchAll(/^@@(\w+) (.*)$/gm)].map((m) => [m[1], m[2].trim()]));
    const failed = failedFacts(facts);
    if (h.state.slots) facts.slots = describeSlots(h.state.slots).replace(/^slots: /, '');
    Object.assign(h.report, {
      live: h.state.live,
      ...(h.state.slots ? { slots: h.state.slots } : {}),
      supervisor: facts.supervisor,
      nginx: facts.nginx,
      health: facts.health,
      ...(failed.length ? { failed } : {}),
    });
    if (!failed.length)
      return [`live ${h.state.live ?? '(none)'}`, ...Object.entries(facts).map(([k, v]) => `${k}: ${v}`)].join('; ');
    const marked = Object.entries(facts).map(([k, v]) => `  ${failed.includes(k) ? '✗' : '✓'} ${k}: ${v}`);
    throw new Error(
      [`${h.host.name}: live ${h.state.live ?? '(none)'}; ${failed.join(', ')} failing:`, ...marked].join('\n'),
    );
  });
}
