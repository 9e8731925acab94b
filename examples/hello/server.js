// The sample app slipway deploys: answers every request with the id of the release it runs from.
// Listens on the unix socket SOCKET (blue-green's slots) or on PORT; on SIGTERM it stops accepting,
// finishes the requests in flight and exits.
import { chmodSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ms from 'ms';

const here = path.dirname(fileURLToPath(import.meta.url));

function releaseId() {
  try {
    return JSON.parse(readFileSync(path.join(here, '.slipway', 'release.json'), 'utf8')).id;
  } catch {
    return path.basename(here);
  }
}

const release = releaseId();
const started = Date.now();
const socket = process.env.SOCKET;
const port = Number(process.env.PORT ?? 8080);

const server = createServer((req, res) => {
  res.setHeader('content-type', 'text/plain');
  if (req.url === '/health') {
    res.end(`${release}\n`);
    return;
  }
  res.end(`hello from release ${release} (up ${ms(Date.now() - started)})\n`);
});

if (socket) {
  // A socket left by an earlier process of this slot would make listen fail (EADDRINUSE).
  rmSync(socket, { force: true });
  server.listen(socket, () => {
    // nginx's worker user connects to it: connecting needs write permission on the socket.
    chmodSync(socket, 0o666);
    console.log(`hello: release ${release} listening on ${socket}`);
  });
} else {
  server.listen(port, process.env.HOST ?? '127.0.0.1', () => {
    console.log(`hello: release ${release} listening on ${port}`);
  });
}

// Drain: no new connections, idle keep-alive connections closed, requests in flight answered, then exit.
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
