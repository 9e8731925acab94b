// The tests' own load client (Node built-ins only): a constant request rate against one URL, half of the
// requests over a few keep-alive connections kept open, half on a new connection each, and every request
// that does not come back as a 2xx answer naming a release counted as failed. wrk and autocannon reconnect
// silently and do not count the request a reset connection lost: a client that cannot see a failure
// proves nothing about zero downtime.
//
//   const load = startLoad({ url: `http://127.0.0.1:${port}/`, rate: 50 });
//   ... deploy ...
//   const s = await load.stop();
//   expect(s.failed).toEqual([]);
//   expect(s.releasesInOrder).toEqual([a, b]);
import http from 'node:http';

export type FailureKind = 'refused' | 'reset' | 'timeout' | 'status' | 'no-release' | 'error';

export interface Failure {
  kind: FailureKind;
  /** The error code and message, or the status and the start of the body. */
  detail: string;
  /** When the request was due to be sent (epoch ms). */
  at: number;
  keepAlive: boolean;
}

export interface Answer {
  /** When the request was due to be sent (epoch ms; requests go out on schedule, not after the previous one). */
  at: number;
  /** From the due time to the end of the body, in ms (a request queued behind a slow one counts its wait). */
  latencyMs: number;
  release: string;
  keepAlive: boolean;
}

export interface LatencyStats {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export interface LoadSummary {
  sent: number;
  ok: number;
  failed: Failure[];
  /** The successful answers, in the order their requests were sent. */
  answers: Answer[];
  /** Successful answers per release. */
  byRelease: Record<string, number>;
  /** The first answer naming each release: its send time (epoch ms). */
  firstSeen: Record<string, number>;
  /** The distinct releases answering, in time order; see releasesInOrder(). */
  releasesInOrder: string[];
  /** p50 / p99 / max latency of the successful answers sent in [from, to) (epoch ms; default: all). */
  latencies(from?: number, to?: number): LatencyStats;
}

export interface LoadOptions {
  /** http://host:port/path; with socketPath, only the path and the Host header are taken from it. */
  url: string;
  /** The Host header, when not the URL's host (e.g. `localhost`, the server_name of a site on 127.0.0.1). */
  host?: string;
  /** Connect to this unix socket instead of the URL's host and port. */
  socketPath?: string;
  /** Requests per second, both kinds together. Default 50. */
  rate?: number;
  /** A request with no complete answer this long after its due time is a failure ('timeout'). Default 3000. */
  timeoutMs?: number;
  /** Keep-alive connections kept open, each its own agent with one socket. Default 4. */
  keepAliveConnections?: number;
  /** Finds the release id in a body (first capture group, or the whole match). Default: a slipway release id. */
  release?: RegExp;
  /** An answer naming the previous release after the switch is overlap if sent this close to it. Default 2000. */
  overlapMs?: number;
}

export interface LoadHandle {
  /** The answers so far (live; in completion order). */
  readonly answers: readonly Answer[];
  readonly failed: readonly Failure[];
  /** Resolves with the first answer naming `release` (or rejects after timeoutMs). */
  waitFor(release: string, timeoutMs?: number): Promise<Answer>;
  /** Stops sending, waits for the requests in flight to end, closes the connections. */
  stop(): Promise<LoadSummary>;
}

/** `YYYY.MM.DD-HH.MM.SS-<sha7>`, as tasks/release/rules.ts names releases. */
export const SLIPWAY_RELEASE = /\b\d{4}\.\d{2}\.\d{2}-\d{2}\.\d{2}\.\d{2}-[0-9a-f]{7}\b/;

const REFUSED = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNABORTED']);
const RESET = new Set(['ECONNRESET', 'EPIPE']);

function classify(error: NodeJS.ErrnoException): FailureKind {
  if (error.code && REFUSED.has(error.code)) return 'refused';
  if ((error.code && RESET.has(error.code)) || /socket hang up/.test(error.message)) return 'reset';
  return 'error';
}

export function startLoad(options: LoadOptions): LoadHandle {
  const url = new URL(options.url);
  const rate = options.rate ?? 50;
  const timeoutMs = options.timeoutMs ?? 3000;
  const pattern = options.release ?? SLIPWAY_RELEASE;
  const agents = Array.from(
    { length: options.keepAliveConnections ?? 4 },
    () => new http.Agent({ keepAlive: true, maxSockets: 1 }),
  );
  const answers: Answer[] = [];
  const failed: Failure[] = [];
  const inFlight = new Set<Promise<void>>();
  const waiters: { release: string; resolve: (a: Answer) => void }[] = [];
  let sent = 0;
  let stopped = false;

  const target = options.socketPath
    ? { socketPath: options.socketPath }
    : { host: url.hostname, port: Number(url.port || 80) };

  function record(answer: Answer) {
    answers.push(answer);
    for (const w of waiters.filter((w) => w.release === answer.release)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(answer);
    }
  }

  function send(index: number, at: number, due: number): Promise<void> {
    const keepAlive = index % 2 === 0;
    const fail = (kind: FailureKind, detail: string) => failed.push({ kind, detail, at, keepAlive });
    return new Promise<void>((resolve) => {
      let settled = false;
      const settle = (then: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        then();
        resolve();
      };
      const req = http.request({
        ...target,
        path: url.pathname + url.search,
        headers: { host: options.host ?? (url.host || 'localhost') },
        // A new connection per request: no agent, so Node sends `Connection: close` and closes it after.
        agent: keepAlive ? agents[(index / 2) % agents.length] : false,
      });
      const timer = setTimeout(() => {
        settle(() => fail('timeout', `no complete answer within ${timeoutMs} ms`));
        req.destroy();
      }, timeoutMs);
      req.on('error', (error: NodeJS.ErrnoException) =>
        settle(() => fail(classify(error), `${error.code ?? ''} ${error.message}`.trim())),
      );
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < 65_536) body += chunk;
        });
        res.on('error', (error: NodeJS.ErrnoException) =>
          settle(() => fail(classify(error), `${error.code ?? ''} ${error.message}`.trim())),
        );
        res.on('aborted', () => settle(() => fail('reset', 'connection closed before the end of the body')));
        res.on('end', () =>
          settle(() => {
            const status = res.statusCode ?? 0;
            if (status < 200 || status > 299) return fail('status', `${status} ${body.slice(0, 200).trim()}`);
            const match = pattern.exec(body);
            if (!match) return fail('no-release', `${status} ${body.slice(0, 200).trim()}`);
            record({ at, latencyMs: performance.now() - due, release: match[1] ?? match[0], keepAlive });
          }),
        );
      });
      req.end();
    });
  }

  // Open loop: request i is due at start + i / rate, whatever happened to the ones before it.
  const startClock = performance.now();
  const startWall = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    if (stopped) return;
    const now = performance.now();
    while (!stopped && startClock + (sent * 1000) / rate <= now) {
      const due = startClock + (sent * 1000) / rate;
      const p = send(sent, startWall + (due - startClock), due);
      sent++;
      inFlight.add(p);
      p.then(() => inFlight.delete(p));
    }
    timer = setTimeout(tick, Math.max(0, startClock + (sent * 1000) / rate - performance.now()));
  };
  tick();

  return {
    answers,
    failed,
    waitFor(release, waitMs = 60_000) {
      const seen = answers.find((a) => a.release === release);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const entry = { release, resolve };
        waiters.push(entry);
        setTimeout(() => {
          const i = waiters.indexOf(entry);
          if (i < 0) return;
          waiters.splice(i, 1);
          reject(new Error(`no answer named ${release} within ${waitMs} ms`));
        }, waitMs).unref();
      });
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      while (inFlight.size) await Promise.all([...inFlight]);
      for (const agent of agents) agent.destroy();
      return summarize(sent, answers, failed, options.overlapMs ?? 2000);
    },
  };
}

function summarize(sent: number, answers: Answer[], failed: Failure[], overlapMs: number): LoadSummary {
  const ordered = [...answers].sort((a, b) => a.at - b.at);
  const byRelease: Record<string, number> = {};
  const firstSeen: Record<string, number> = {};
  for (const a of ordered) {
    byRelease[a.release] = (byRelease[a.release] ?? 0) + 1;
    firstSeen[a.release] ??= a.at;
  }
  return {
    sent,
    ok: answers.length,
    failed: [...failed].sort((a, b) => a.at - b.at),
    answers: ordered,
    byRelease,
    firstSeen,
    releasesInOrder: releasesInOrder(ordered, overlapMs),
    latencies: (from = -Infinity, to = Infinity) =>
      latencyStats(ordered.filter((a) => a.at >= from && a.at < to).map((a) => a.latencyMs)),
  };
}

/**
 * The distinct releases answering, in send-time order. During a cutover the old release may still answer a
 * request sent just after the new one's first answer (it was already on its way): such an answer is overlap,
 * not a move back, when it names the release just before the newest, was sent within `overlapMs` of the
 * newest's first answer, and the newest answers again after it. Anything else that names another release is
 * a move, so a flap back to an old release, or one that lasts, shows up as [a, b, a].
 */
export function releasesInOrder(answers: readonly Pick<Answer, 'at' | 'release'>[], overlapMs = 2000): string[] {
  const ordered = [...answers].sort((a, b) => a.at - b.at);
  const order: string[] = [];
  let switchedAt = 0;
  ordered.forEach((a, i) => {
    const newest = order[order.length - 1];
    if (a.release === newest) return;
    const overlap =
      order.length >= 2 &&
      a.release === order[order.length - 2] &&
      a.at - switchedAt <= overlapMs &&
      ordered.slice(i + 1).some((later) => later.release === newest);
    if (overlap) return;
    order.push(a.release);
    switchedAt = a.at;
  });
  return order;
}

export function latencyStats(values: number[]): LatencyStats {
  if (values.length === 0) return { count: 0, p50: 0, p99: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] };
}
