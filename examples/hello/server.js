// The sample app slipway deploys: answers every request with the id of the release it runs from.
//
// Environment:
//   SOCKET       listen on this unix socket path (a stale socket file is removed first) instead of a port
//   SOCKET_MODE  the socket's mode, octal (default 666: nginx's worker must connect; the directory holding
//                the socket decides who can reach it)
//   PORT, HOST   otherwise listen on HOST:PORT (default 127.0.0.1:8080)
//   RELEASE_ID   the release id when the release has no .slipway/release.json (default: the folder's name)
// GET /health answers the release id alone; any other path with ?delay=<ms> (≤ 10000) answers that much later.
// On SIGTERM (or SIGINT) it stops accepting, closes idle keep-alive connections, lets the requests in flight
// finish (answering with `Connection: close`) and exits 0.
import { chmodSync, lstatSync, readFileSync, unlinkSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ms from 'ms';

const here = path.dirname(fileURLToPath(import.meta.url));

function releaseId() {
  try {
    return JSON.parse(readFileSync(path.join(here, '.slipway', 'release.json'), 'utf8')).id;
  } catch {
    return process.env.RELEASE_ID || path.basename(here);
  }
}

const release = releaseId();
const started = Date.now();
let draining = false;

const server = createServer((req, res) => {
  res.setHeader('content-type', 'text/plain');
  // Once draining, every answer closes its connection, so no keep-alive connection outlives the process.
  const answer = (body) => {
    if (draining) res.setHeader('connection', 'close');
    res.end(body);
  };
  if (req.url === '/health') {
    answer(`${release}\n`);
    return;
  }
  let delay = 0;
  try {
    delay = Math.min(Number(new URL(req.url ?? '/', 'http://app').searchParams.get('delay')) || 0, 10_000);
  } catch {
    // Not a URL: answer at once.
  }
  setTimeout(() => answer(`hello from release ${release} (up ${ms(Date.now() - started)})\n`), delay);
});

/** Removes a socket file left by a process that is gone; refuses to remove anything that is not a socket. */
function removeStaleSocket(file) {
  let stat;
  try {
    stat = lstatSync(file);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new Error(`hello: SOCKET ${file} exists and is not a socket; not removing it`);
  unlinkSync(file);
}

const socket = process.env.SOCKET;
if (socket) {
  removeStaleSocket(socket);
  server.listen(socket, () => {
    chmodSync(socket, Number.parseInt(process.env.SOCKET_MODE || '666', 8));
    console.log(`hello: release ${release} listening on ${socket}`);
  });
} else {
  const port = Number(process.env.PORT ?? 8080);
  server.listen(port, process.env.HOST ?? '127.0.0.1', () => {
    console.log(`hello: release ${release} listening on ${port}`);
  });
}

function drain(signal) {
  if (draining) return;
  draining = true;
  console.log(`hello: ${signal}: draining`);
  // Stop accepting; the callback runs once every connection has ended. Node closes the socket file itself.
  server.close(() => {
    console.log('hello: drained, exiting');
    process.exit(0);
  });
  // A connection whose answer is in flight gets `Connection: close` with it (above) and ends after it; an idle
  // keep-alive connection is closed now.
  server.closeIdleConnections();
}
process.on('SIGTERM', () => drain('SIGTERM'));
process.on('SIGINT', () => drain('SIGINT'));
