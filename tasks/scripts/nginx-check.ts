// Shell for checking a release's rendered nginx config with `nginx -t` before anything is installed.
import { releaseFiles } from '../lib/paths.js';
import { raw, sh, type Shell } from '../lib/sh.js';

/** How the nginx check's failure starts: the upload step tells it from the rest of its round trip by this. */
export const NGINX_REJECTED = 'nginx -t rejected the rendered site';

/**
 * Checks a rendered nginx site with `nginx -t` against a throwaway main config that includes it.
 * `nginxTest` is the command as the install runs it (services.sudo + services.nginx.test), so it
 * checks with the same privileges: as the deploy user it cannot create nginx's temp dirs on a host
 * where nginx never ran. Its own -p/-c are appended (nginx takes the last ones).
 * `nginx -t` also binds the listen sockets; as a non-root deploy user (port 80) or beside the running
 * nginx that fails with bind() errors, which say nothing about the file: only other errors count.
 * nginx's message names the site by the staged path, which is gone by the time anyone reads it: it
 * says "the rendered nginx.conf" instead, without the line about the throwaway main config.
 */
export function nginxCheckScript(nginxTest: Shell, releaseDir: string) {
  const files = releaseFiles(releaseDir);
  const site = files.rendered('nginx.conf');
  const work = files.nginxCheck;
  // The throwaway main config, written by printf from the paths (so the command carries them once).
  const main = 'pid %s/nginx.pid;\\nerror_log stderr;\\nevents {}\\nhttp {\\n  access_log off;\\n  include %s;\\n}\\n';
  return sh`nginx_work=${work}
mkdir -p "$nginx_work"/logs
printf ${raw(`'${main}'`)} "$nginx_work" ${site} > "$nginx_work"/nginx.conf
check=0
out=$(${nginxTest} -q -p "$nginx_work"/ -c "$nginx_work"/nginx.conf 2>&1) || check=$?
rm -rf "$nginx_work"
if [ "$check" != 0 ] && printf '%s\\n' "$out" | grep -E '\\[(emerg|crit|alert)\\]' | grep -qv 'bind() to'; then
  out=$(printf '%s\\n' "$out" | grep -vF -- "$nginx_work/nginx.conf test failed")
  site=${site}
  out=\${out//"$site"/the rendered nginx.conf}
  printf '%s:\\n%s\\n' ${NGINX_REJECTED} "$out" >&2
  exit 1
fi`;
}
