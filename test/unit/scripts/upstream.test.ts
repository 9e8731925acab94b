// listen 'port''s traffic move (tasks/scripts/upstream.ts), run for real by bash on a temp deploy root against a
// stand-in for nginx: a child process serving the site, whose X-Slipway-Upstream names the port of the upstream
// it loaded at its last "reload" (the reload command copies run/upstream.conf to what it serves). Real nginx:
// test/e2e/blue-green.test.ts › blue-green with listen 'port'.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sh } from '../../../tasks/lib/sh.js';
import {
  ensureUpstreamScript,
  moveUpstreamScript,
  siteUrl,
  unlessLivePortScript,
} from '../../../tasks/scripts/upstream.js';
import { bash, scratchDir } from '../../helpers/unit.js';

const { freshDir } = scratchDir('upstream');

const SITE = `
const http = require('node:http'), fs = require('node:fs');
const loaded = process.argv[1];
const s = http.createServer((req, res) => {
  let line = '';
  try { line = fs.readFileSync(loaded, 'utf8'); } catch {}
  const port = /127\\.0\\.0\\.1:(\\d+)/.exec(line)?.[1];
  if (port) res.setHeader('X-Slipway-Upstream', '127.0.0.1:' + port);
  res.end(req.headers.host + '\\n');
});
s.listen(0, '127.0.0.1', () => console.log(s.address().port));
`;

let site: ChildProcess;
let sitePort = 0;
const dir = freshDir();
const root = path.join(dir, "my 'root");
const loaded = path.join(dir, 'loaded.conf');
const upstream = path.join(root, 'run/upstream.conf');
/** nginx's reload, as the stand-in sees it: the include is read again. */
const reload = sh`cp ${upstream} ${loaded}`;
const state = sh`echo recorded > ${path.join(dir, 'state')}`;
const blue = { slot: 'blue', port: 9001 } as const;
const green = { slot: 'green', port: 9002 } as const;
const confirm = () => ({ url: `http://127.0.0.1:${sitePort}/health`, serverName: 'example.test', seconds: 1 });

beforeAll(async () => {
  mkdirSync(root, { recursive: true });
  site = spawn(process.execPath, ['-e', SITE, loaded], { stdio: ['ignore', 'pipe', 'inherit'] });
  sitePort = await new Promise<number>((resolve) => site.stdout!.once('data', (d: Buffer) => resolve(Number(d))));
});
afterAll(() => {
  site?.kill();
});

describe('siteUrl', () => {
  it('reaches the site where vars.listen says, 127.0.0.1 for a wildcard, port 80 without it', () => {
    expect(siteUrl({ vars: {} }, '/health')).toBe('http://127.0.0.1:80/health');
    expect(siteUrl({ vars: { listen: '8081' } }, '/h')).toBe('http://127.0.0.1:8081/h');
    expect(siteUrl({ vars: { listen: '127.0.0.2:8081' } }, '/h')).toBe('http://127.0.0.2:8081/h');
    expect(siteUrl({ vars: { listen: '0.0.0.0:81 default_server' } }, '/h')).toBe('http://127.0.0.1:81/h');
  });
});

describe('moveUpstreamScript', () => {
  it('a first deploy makes run/upstream.conf (blue); a later one is left as it is', () => {
    expect(bash(ensureUpstreamScript(root, 9001).text).code).toBe(0);
    expect(readFileSync(upstream, 'utf8')).toBe('# slot blue\nserver 127.0.0.1:9001;\n');
    expect(bash(ensureUpstreamScript(root, 9002).text).code).toBe(0);
    expect(readFileSync(upstream, 'utf8')).toBe('# slot blue\nserver 127.0.0.1:9001;\n');
  });

  it('rewrites the include, reloads, waits until the site answers from the new port, then records the state', () => {
    writeFileSync(upstream, '# slot blue\nserver 127.0.0.1:9001;\n');
    bash(reload.text);
    const moved = bash(moveUpstreamScript(root, { to: green, back: blue, reload, confirm: confirm() }, state).text);
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stdout).toMatch(/^@@confirmed \d+$/m);
    expect(readFileSync(upstream, 'utf8')).toBe('# slot green\nserver 127.0.0.1:9002;\n');
    expect(readFileSync(path.join(dir, 'state'), 'utf8')).toBe('recorded\n');
    expect(bash(`${unlessLivePortScript(root, 'green').text}\necho went on`).stdout).toBe('@@live\n');
    expect(bash(`${unlessLivePortScript(root, 'blue').text}\necho went on`).stdout).toBe('went on\n');
  });

  it('a reload that does not take effect: the old port written back and reloaded, no state, exit 1 saying why', () => {
    writeFileSync(upstream, '# slot blue\nserver 127.0.0.1:9001;\n');
    bash(reload.text);
    writeFileSync(path.join(dir, 'state'), '');
    // nginx "reloads" without reading the include: the site goes on answering from 9001.
    const ignored = sh`true`;
    const moved = bash(
      moveUpstreamScript(root, { to: green, back: blue, reload: ignored, confirm: confirm() }, state).text,
    );
    expect(moved.code).toBe(1);
    expect(moved.stderr).toContain(
      'nginx did not move traffic to port 9002 within 1 s of its reload (last answer from: 127.0.0.1:9001)',
    );
    expect(readFileSync(upstream, 'utf8')).toBe('# slot blue\nserver 127.0.0.1:9001;\n');
    expect(readFileSync(path.join(dir, 'state'), 'utf8')).toBe('');
  });
});
