// The sample app slipway deploys: answers every request with the id of the release it runs from.
import { readFileSync } from 'node:fs';
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
const port = Number(process.env.PORT ?? 8080);

createServer((req, res) => {
  res.setHeader('content-type', 'text/plain');
  if (req.url === '/health') {
    res.end(`${release}\n`);
    return;
  }
  res.end(`hello from release ${release} (up ${ms(Date.now() - started)})\n`);
}).listen(port, process.env.HOST ?? '127.0.0.1', () => {
  console.log(`hello: release ${release} listening on ${port}`);
});
