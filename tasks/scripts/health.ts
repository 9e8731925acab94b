// Shell for the health check: good answers in a row from one RUNNING process; the stderr tail when it fails.
import type { Services } from '../config/types.js';
import { raw, script, sh, type Shell } from '../lib/sh.js';
import type { Slot } from '../release/templates.js';
import { programStatusCommand, stderrTail } from './services.js';

export interface HealthCheck {
  url: string;
  expectStatus: number;
  expectBody?: string;
  timeoutSeconds: number;
  /** Good answers in a row needed, `intervalSeconds` apart. */
  successes: number;
  intervalSeconds: number;
  /** blue-green with listen 'socket': the URL is fetched through this unix socket (curl --unix-socket). */
  socket?: string;
}

/** The check for one release: `{{releaseId}}` in expectBody stands for its id. */
export function checkFor(check: HealthCheck, releaseId: string): HealthCheck {
  return { ...check, expectBody: check.expectBody?.replaceAll('{{releaseId}}', releaseId) };
}

// Without curl, python's standard library GETs the URL: prints the status, writes the body to the file.
const PYTHON_GET = [
  'import sys,urllib.request as u',
  'try: r=u.urlopen(sys.argv[1], timeout=5); s=r.status; b=r.read()',
  'except u.HTTPError as e: s=e.code; b=e.read()',
  'open(sys.argv[2],"wb").write(b); print(s)',
].join('\n');

// The same through a unix socket (argv[3]): http.client with the socket connected by hand.
const PYTHON_GET_UNIX = [
  'import sys,socket,http.client as h,urllib.parse as p',
  'c=h.HTTPConnection("localhost", timeout=5); c.sock=socket.socket(socket.AF_UNIX); c.sock.settimeout(5)',
  'c.sock.connect(sys.argv[3]); u=p.urlsplit(sys.argv[1])',
  'c.request("GET", u.path + ("?" + u.query if u.query else ""))',
  'r=c.getresponse(); open(sys.argv[2],"wb").write(r.read()); print(r.status)',
].join('\n');

/**
 * The shell functions both checks use: `get` (the URL's status; the body in $tmp; through `check.socket` when
 * set), `program_state` (blue-green: the slot's program), `running_pid`.
 */
function probe(check: HealthCheck, services?: Services, slot?: Slot): Shell {
  const supervisor = services?.supervisor;
  return script(
    sh`url=${check.url} want=${check.expectStatus} body=${check.expectBody ?? ''}`,
    sh`tmp=$(mktemp)`,
    sh`trap 'rm -f "$tmp"' EXIT`,
    sh`get() {`,
    sh`  if command -v curl >/dev/null; then`,
    check.socket
      ? sh`    curl -s -o "$tmp" -w '%{http_code}' --max-time 5 --unix-socket ${check.socket} "$url"`
      : sh`    curl -s -o "$tmp" -w '%{http_code}' --max-time 5 "$url"`,
    sh`  else`,
    check.socket
      ? sh`    python3 -c ${PYTHON_GET_UNIX} "$url" "$tmp" ${check.socket}`
      : sh`    python3 -c ${PYTHON_GET} "$url" "$tmp"`,
    sh`  fi`,
    sh`}`,
    supervisor
      ? script(
          sh`program_state() { ${programStatusCommand(services!, supervisor, slot)} 2>&1 | head -n 1 | tr -s ' '; }`,
          sh`running_pid() { printf '%s\\n' "$1" | awk '$2 == "RUNNING" { sub(/,$/, "", $4); print $4 }'; }`,
        )
      : script(sh`program_state() { :; }`, sh`running_pid() { echo -; }`),
  );
}

/**
 * The bake (rollout.bakeSeconds), after the health check passed: for `seconds`, every `intervalSeconds`, the URL
 * must answer as expected from the same RUNNING process; the first answer that does not fails it (no retry).
 * One command for the whole bake: the polls run on the host. Prints `@@healthy …`; on failure why and stderr.
 * blue-green: `check` is the live slot's own (slotCheck: its socket or port) and `slot` names its program.
 */
export function bakeScript(check: HealthCheck, services: Services | undefined, seconds: number, slot?: Slot): Shell {
  const supervisor = services?.supervisor;
  return script(
    probe(check, services, slot),
    sh`end=$(( $(date +%s) + ${Math.ceil(seconds)} )) polls=0 seen=`,
    sh`while :; do`,
    sh`  got=$(get 2>/dev/null) || got=`,
    sh`  state=$(program_state)`,
    sh`  pid=$(running_pid "$state")`,
    sh`  why=`,
    sh`  if [ "$got" != "$want" ] || { [ -n "$body" ] && ! grep -qF -- "$body" "$tmp"; }; then`,
    sh`    said=$(head -c 200 "$tmp" | tr '\\n' ' ')`,
    sh`    why=$(printf '%s answered %s (expected %s%s): %s' "$url" "\${got:-nothing}" "$want" "\${body:+ with $body}" "$said")`,
    sh`  elif [ -z "$pid" ]; then`,
    sh`    why="supervisor says: $state"`,
    sh`  elif [ -n "$seen" ] && [ "$pid" != "$seen" ]; then`,
    sh`    why="the program restarted (pid $seen, now $pid)"`,
    sh`  fi`,
    sh`  if [ -n "$why" ]; then`,
    sh`    printf 'unhealthy %ss into the bake: %s\\n' "$(( $(date +%s) - end + ${Math.ceil(seconds)} ))" "$why" >&2`,
    supervisor && script(sh`    printf 'supervisor: %s\\n' "$state" >&2`, stderrTail(services!, supervisor, slot)),
    sh`    exit 1`,
    sh`  fi`,
    sh`  seen=$pid polls=$((polls + 1))`,
    sh`  if [ "$(date +%s)" -ge "$end" ]; then`,
    sh`    echo "@@healthy stayed healthy for ${raw(String(Math.ceil(seconds)))}s ($polls answers)"`,
    sh`    exit 0`,
    sh`  fi`,
    sh`  sleep ${check.intervalSeconds}`,
    sh`done`,
  );
}

/**
 * GETs the URL on the host until it answers as expected `successes` times in a row, `intervalSeconds`
 * apart, or the timeout passes. With a supervisor program, an answer counts only while supervisor says
 * RUNNING, and the count starts again when its pid changed: a release that crashes and is restarted
 * between two answers is not healthy. Prints `@@healthy <what it saw>`; on failure why, supervisor's
 * state and the program's stderr.
 */
export function healthCheckScript(check: HealthCheck, services?: Services, slot?: Slot): Shell {
  const supervisor = services?.supervisor;
  const timeout = Math.ceil(check.timeoutSeconds);
  const times = check.successes > 1 ? ` ${check.successes} times in a row` : '';
  return script(
    probe(check, services, slot),
    sh`successes=${check.successes} deadline=$(( $(date +%s) + ${timeout} ))`,
    sh`streak=0 seen= state= why=`,
    sh`while :; do`,
    sh`  got=$(get 2>/dev/null) || got=`,
    sh`  if [ "$got" = "$want" ] && { [ -z "$body" ] || grep -qF -- "$body" "$tmp"; }; then`,
    sh`    state=$(program_state)`,
    sh`    pid=$(running_pid "$state")`,
    sh`    if [ -z "$pid" ]; then`,
    sh`      streak=0`,
    sh`      why="$url answered $got, but supervisor says: $state"`,
    sh`    elif [ "$streak" -gt 0 ] && [ "$pid" != "$seen" ]; then`,
    sh`      streak=1`,
    sh`      why="$url answered $got, but the program restarted between two answers"`,
    sh`    else`,
    sh`      streak=$((streak + 1))`,
    sh`      why="$url answered $got only $streak of $successes times in a row"`,
    sh`    fi`,
    sh`    seen=$pid`,
    sh`    if [ "$streak" -ge "$successes" ]; then`,
    sh`      echo "@@healthy $url answered $got${raw(times)}\${state:+; $state}"`,
    sh`      exit 0`,
    sh`    fi`,
    sh`  else`,
    sh`    streak=0`,
    sh`    said=$(head -c 200 "$tmp" | tr '\\n' ' ')`,
    sh`    expected="$want\${body:+ with body containing $body}"`,
    sh`    why=$(printf '%s answered %s (expected %s): %s' "$url" "\${got:-nothing}" "$expected" "$said")`,
    sh`  fi`,
    sh`  if [ "$(date +%s)" -ge "$deadline" ]; then`,
    sh`    printf 'health check failed after %ss: %s\\n' ${timeout} "$why" >&2`,
    supervisor &&
      script(sh`    printf 'supervisor: %s\\n' "$(program_state)" >&2`, stderrTail(services!, supervisor, slot)),
    sh`    exit 1`,
    sh`  fi`,
    // Within a streak, wait the interval; until the first good answer, ask again soon.
    sh`  if [ "$streak" -gt 0 ]; then`,
    sh`    sleep ${check.intervalSeconds}`,
    sh`  else`,
    sh`    sleep 0.5`,
    sh`  fi`,
    sh`done`,
  );
}

/** What a passed health check saw, from its `@@healthy` line. */
export function healthyIn(output: string): string {
  return /^@@healthy (.*)$/m.exec(output)?.[1] ?? '';
}
