// slipway's shell code kept on a host, so a run sends only a short call. A script built by `sh` is its text as
// written (constant from run to run) plus the values filled in: the text becomes a bash function, stored once
// under the deploy root as .slipway/lib-<hash>.sh (keyed by the hash of its code), and each run sends the call:
// the function's name and the values, quoted once. A host without that file (first deploy, slipway upgraded, the
// file removed or cut short) answers CODE_MISSING_STATUS at once, having run nothing; the command is then sent
// again with the code attached, which installs it. The lock's round trip also lists the files with their sha256,
// so later calls attach what is missing or damaged in their one round trip. What the host runs is the script as
// written either way.
import { createHash } from 'node:crypto';
import { layout } from '../lib/paths.js';
import { secrets } from '../lib/redact.js';
import { type Part, quote, type Shell } from '../lib/sh.js';

/** The exit status of a call whose code the host lacks (with CODE_MISSING on stderr): nothing ran. */
export const CODE_MISSING_STATUS = 97;
export const CODE_MISSING = '@@no-code';

/** Below this many characters of text, a script goes as it is: its call would save next to nothing. */
const MIN_TEXT = 200;
/** The files of code a deploy root keeps (the newest by time written); older ones are sent again if needed. */
export const KEEP_CODE = 40;

export interface HostCode {
  hash: string;
  /** The file on the host, under the deploy root. */
  file: string;
  /** The file's content: the function, then the line that marks the file complete. */
  definition: string;
  /** The values, in the order the function reads them ("${_v[i]}"). */
  values: string[];
}

type Context = 'plain' | 'sub' | 'sq' | 'dq' | 'ansi' | 'bq';

/**
 * Follows the quoting of a script's text so far, enough to tell whether a value stands where a quoted word does
 * (then "${_v[i]}" means the same) or inside quotes, a comment, backquotes or a here-document (it does not).
 */
class QuoteTracker {
  private readonly stack: Array<{ context: Context; depth: number }> = [{ context: 'plain', depth: 0 }];
  private previous = '\n';
  private comment = false;
  unsupported = false;

  get wordContext(): boolean {
    const top = this.stack[this.stack.length - 1].context;
    return !this.comment && (top === 'plain' || top === 'sub');
  }

  get balanced(): boolean {
    return this.stack.length === 1 && !this.unsupported;
  }

  /** A value was written: its quoted text is one word, changing no context. */
  value(): void {
    this.previous = 'v';
  }

  text(text: string): void {
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      const next = text[i + 1];
      const top = this.stack[this.stack.length - 1];
      if (this.comment) {
        if (c === '\n') this.comment = false;
      } else if (top.context === 'sq') {
        if (c === "'") this.stack.pop();
      } else if (top.context === 'ansi' || top.context === 'bq') {
        if (c === '\\') i++;
        else if (c === (top.context === 'ansi' ? "'" : '`')) this.stack.pop();
      } else if (top.context === 'dq') {
        if (c === '\\') i++;
        else if (c === '"') this.stack.pop();
        else if (c === '$' && next === '(') {
          this.stack.push({ context: 'sub', depth: 1 });
          i++;
        } else if (c === '`') this.stack.push({ context: 'bq', depth: 0 });
      } else {
        // plain or inside $( … )
        if (c === '\\') i++;
        else if (c === "'") this.stack.push({ context: 'sq', depth: 0 });
        else if (c === '"') this.stack.push({ context: 'dq', depth: 0 });
        else if (c === '`') this.stack.push({ context: 'bq', depth: 0 });
        else if (c === '$' && next === "'") {
          this.stack.push({ context: 'ansi', depth: 0 });
          i++;
        } else if (c === '$' && next === '(') {
          this.stack.push({ context: 'sub', depth: 1 });
          i++;
        } else if (c === '#' && /[\s;&|()]/.test(this.previous)) this.comment = true;
        else if (c === '<' && next === '<' && text[i + 2] !== '<')
          this.unsupported = true; // a here-document
        else if (c === '<' && next === '<') i += 2;
        else if (top.context === 'sub' && c === '(') top.depth++;
        else if (top.context === 'sub' && c === ')' && --top.depth === 0) this.stack.pop();
      }
      this.previous = c;
    }
  }
}

/**
 * The script as a function kept on the host and the values of this call; undefined when it goes better as it
 * is (short, no values) or cannot be split safely (a value inside quotes, a here-document).
 */
export function hostCode(command: Shell, deployTo: string): HostCode | undefined {
  return remembered(codes, `${deployTo}\0${command.text}`, () => splitCode(command, deployTo) ?? null) ?? undefined;
}

function splitCode(command: Shell, deployTo: string): HostCode | undefined {
  const tracker = new QuoteTracker();
  const values: string[] = [];
  const index = new Map<string, number>();
  const arrays: number[] = [];
  let body = '';
  for (const part of command.parts as Part[]) {
    if (typeof part === 'string') {
      tracker.text(part);
      body += part;
      continue;
    }
    // Without a digit, a value is taken as the code's own (a path under the deploy root, a message, a name): it
    // stays in the text. Release ids, checksums, tokens, times and sizes all have digits: those are the call's; so
    // is an empty array (the releases to purge, say: none this time, some the next), and anything holding a secret
    // (a .env value): never written into a file on the host.
    if (!/[0-9]/.test(part.value) && part.list?.length !== 0 && !secrets.foundIn(part.value)) {
      tracker.value();
      body += part.quoted;
      continue;
    }
    if (!tracker.wordContext) return undefined;
    tracker.value();
    // An array is one value, its words (quoted by sh) made a bash array: the code is the same whatever its length.
    const key = part.list ? `list:${part.quoted}` : part.value;
    let i = index.get(key);
    if (i === undefined) {
      i = values.push(part.value) - 1;
      index.set(key, i);
      if (part.list) arrays.push(i);
    }
    body += part.list ? `"\${_a${i}[@]}"` : `"\${_v[${i}]}"`;
  }
  if (!tracker.balanced || values.length === 0 || body.length < MIN_TEXT) return undefined;
  const preamble = arrays.map((i) => `eval "_a${i}=(\${_v[${i}]})"\n`).join('');
  const hash = createHash('sha256')
    .update(preamble + body)
    .digest('hex')
    .slice(0, 16);
  return {
    hash,
    file: `${codeDir(deployTo)}/lib-${hash}.sh`,
    // The last line marks the file complete: one cut short (or another version's) never passes the check.
    definition: `_s() {\n_v=("$@")\n${preamble}${body}\n}\n_sw=${hash}\n`,
    values,
  };
}

export const codeDir = (deployTo: string) => `${layout(deployTo).root}/.slipway`;

/**
 * The values as words for a POSIX login shell (dash too), shortened: a path prefix or a long name (a release id, a
 * checksum) that several values share is set once as a variable before the call (`a=/srv/app/tmp/<id>; …
 * "$a"/.slipway/nginx.conf`). The words the function receives are the same strings.
 */
export function callWords(values: readonly string[]): { assignments: string; words: string[] } {
  return remembered(calls, values.join('\0'), () => shortestWords(values));
}

/**
 * The last results of a pure function by key: the hosts of a fleet mostly get the same scripts with the same
 * values (one deploy root, one release id), worked out once instead of once per host.
 */
function remembered<T>(cache: Map<string, T>, key: string, compute: () => T): T {
  const known = cache.get(key);
  if (known !== undefined) return known;
  const result = compute();
  if (cache.size >= 256) cache.delete(cache.keys().next().value as string);
  cache.set(key, result);
  return result;
}
const calls = new Map<string, { assignments: string; words: string[] }>();
const codes = new Map<string, HostCode | null>();

function shortestWords(values: readonly string[]): { assignments: string; words: string[] } {
  const candidates = new Set<string>();
  for (const v of values) {
    if (v.startsWith('/')) {
      for (let i = v.indexOf('/', 1); i > 0; i = v.indexOf('/', i + 1)) candidates.add(v.slice(0, i));
      candidates.add(v);
    }
    for (const token of v.split(/[\s/'"=:{},;()*]+/)) {
      if (token.length < 12) continue;
      candidates.add(token);
      const stem = token.replace(/(\.[a-z][a-z0-9]*)+$/, '');
      if (stem.length >= 12) candidates.add(stem);
    }
  }
  // Only what occurs twice or more can pay for its variable.
  const uses = new Map<string, number>();
  for (const c of candidates)
    uses.set(
      c,
      values.reduce((n, v) => n + v.split(c).length - 1, 0),
    );
  for (const c of candidates) if (uses.get(c)! < 2) candidates.delete(c);
  // Greedy: of the few that promise most (uses × length), the variable that shortens the call most, while one does.
  const promise = (c: string) => uses.get(c)! * (c.length - 6) - c.length;
  const ranked = [...candidates].sort((a, b) => promise(b) - promise(a));
  let chosen: string[] = [];
  let best = encodeWords(values, chosen);
  while (chosen.length < 16) {
    let pick: { vars: string[]; result: ReturnType<typeof encodeWords> } | undefined;
    for (const c of ranked.filter((r) => !chosen.includes(r)).slice(0, 4)) {
      const vars = [...chosen, c];
      const result = encodeWords(values, vars);
      if (result.length < (pick?.result.length ?? best.length)) pick = { vars, result };
    }
    if (!pick) break;
    chosen = pick.vars;
    best = pick.result;
  }
  return { assignments: best.assignments, words: best.words };
}

/** Each value as a word: its longest variable values at each point as "$x", the rest quoted. */
function encodeWords(values: readonly string[], vars: readonly string[]) {
  const sorted = [...vars].sort((a, b) => a.length - b.length);
  const names = new Map(sorted.map((v, i) => [v, String.fromCharCode(97 + i)]));
  const as = (value: string, own?: string) => {
    // Where each variable's value starts in this one (the longest there wins); a variable's own value is written
    // with shorter ones only.
    const at = new Map<number, string>();
    for (const v of sorted) {
      if (own !== undefined && v.length >= own.length) continue;
      for (let i = value.indexOf(v); i >= 0; i = value.indexOf(v, i + 1))
        if ((at.get(i)?.length ?? 0) < v.length) at.set(i, v);
    }
    if (at.size === 0) return quote(value);
    let out = '';
    let literal = '';
    for (let i = 0; i < value.length; ) {
      const match = at.get(i);
      if (!match) {
        literal += value[i++];
        continue;
      }
      if (literal) out += quote(literal);
      literal = '';
      out += `"$${names.get(match)}"`;
      i += match.length;
    }
    return out + (literal ? quote(literal) : '');
  };
  const assignments = sorted.map((v) => `${names.get(v)}=${as(v, v)}; `).join('');
  const words = values.map((v) => as(v));
  return { assignments, words, length: assignments.length + words.join(' ').length };
}

/** The command line for the host's login shell: the call, or (attached) the code installing itself, then the call. */
export function hostCall(code: HostCode, deployTo: string, attach: boolean, listCode = false): string {
  const { assignments, words } = callWords(code.values);
  const dir = codeDir(deployTo);
  // The code the host holds, each file's sha256: one cut short or changed is not taken for the code it names.
  const list = listCode ? `sha256sum -- "$D"/lib-*.sh >&2 2>/dev/null;` : '';
  const run = attach
    ? // The code runs from the command line; kept on the host once the deploy root is one (the lock may claim it
      // only now: the call runs first, in a subshell, so its exit is not the end).
      `c=$1;shift;eval "$c";(_s "$@");s=$?;` +
      `if [ -e ${quote(layout(deployTo).rootMark)} ];then { mkdir -p "$D"&&` +
      `t=$(mktemp "$D"/.lib.XXXXXX)&&printf %s "$c" >"$t"&&chmod 644 "$t"&&` +
      `mv -f "$t" "$D"/lib-${code.hash}.sh&&` +
      `ls -t "$D"/lib-*.sh|tail -n +${KEEP_CODE + 1}|xargs -r rm -f --;} 2>/dev/null;fi;exit $s`
    : `. "$D"/lib-${code.hash}.sh;[ "$_sw" = ${code.hash} ]||` +
      `{ echo ${CODE_MISSING}>&2;exit ${CODE_MISSING_STATUS};};_s "$@"`;
  return (
    `${assignments}exec bash -c ${quote(`D=${quote(dir)};${list}${run}`)} s ` +
    `${attach ? `${quote(code.definition)} ` : ''}${words.join(' ')}`
  );
}

/** The code a host listed (sha256sum lines on stderr, see hostCall): the file's hash by the code's hash. */
export function listedCode(stderr: string): { held: Map<string, string>; rest: string } {
  const held = new Map<string, string>();
  const rest: string[] = [];
  for (const line of stderr.split('\n')) {
    const match = /^([0-9a-f]{64}) [ *].*\/\.slipway\/lib-([0-9a-f]{16})\.sh$/.exec(line);
    if (match) held.set(match[2], match[1]);
    else rest.push(line);
  }
  return { held, rest: rest.join('\n') };
}

/** The file a host holds is this code's, whole: its sha256 is the definition's. */
export const sameCode = (code: HostCode, fileSha256: string | undefined) =>
  fileSha256 === createHash('sha256').update(code.definition).digest('hex');
