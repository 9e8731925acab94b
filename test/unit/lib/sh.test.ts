// The POSIX quoting every shell line goes through (tasks/lib/sh.ts), checked by having dash and bash read the
// quoted values back.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { quote, raw, script, sh, Shell } from '../../../tasks/lib/sh.js';

// Values that must reach a shell as one literal word, and the exact text quote() gives for each.
const QUOTED: Array<[string, string]> = [
  ["it's", `'it'\\''s'`],
  ["'", `''\\'''`],
  ["''", `''\\'''\\'''`],
  ['say "hi"', `'say "hi"'`],
  ['$(touch /tmp/slipway-quote-pwned)', `'$(touch /tmp/slipway-quote-pwned)'`],
  ['`touch /tmp/slipway-quote-pwned`', "'`touch /tmp/slipway-quote-pwned`'"],
  ['a;touch /tmp/slipway-quote-pwned', `'a;touch /tmp/slipway-quote-pwned'`],
  ['a && b || c | d & e', `'a && b || c | d & e'`],
  ['two\nlines', `'two\nlines'`],
  ['trailing newline\n', `'trailing newline\n'`],
  ['with space', `'with space'`],
  ['tab\there', `'tab\there'`],
  ['-rf', `'-rf'`],
  ['--', `'--'`],
  ['-', `'-'`],
  ['ünïcödé ☃ 日本', `'ünïcödé ☃ 日本'`],
  ['', `''`],
  ['\\', `'\\'`],
  ['back\\slash\\n', `'back\\slash\\n'`],
  ['$HOME', `'$HOME'`],
  ['${HOME:-x}', `'\${HOME:-x}'`],
  ['*', `'*'`],
  ['?', `'?'`],
  ['[a]', `'[a]'`],
  ['~', `'~'`],
  ['~root', `'~root'`],
  ['a>b<c', `'a>b<c'`],
  ['#comment', `'#comment'`],
  ['!x', `'!x'`],
  ['{a,b}', `'{a,b}'`],
  ['(x)', `'(x)'`],
  ['a=b c', `'a=b c'`],
];

// Plain words go through unquoted.
const PLAIN = [
  'deploy',
  '/srv/app/releases/2026.01.01-00.00.01-aaaaaaa',
  'a_b.c-d',
  'user@host:22',
  '50%',
  'a+b=c,d',
  'x/-y',
  '1.2.3',
];

describe('quote', () => {
  it.each(QUOTED)('quotes %j exactly', (value, expected) => {
    expect(quote(value)).toBe(expected);
  });
  it('leaves plain words alone', () => {
    for (const value of PLAIN) expect(quote(value)).toBe(value);
  });
  it('numbers become words; negative ones are quoted like an option', () => {
    expect(quote(42)).toBe('42');
    expect(quote(-1)).toBe(`'-1'`);
  });

  // The real check: a shell reads the quoted text back as the same single word.
  const shells = ['/bin/sh', 'bash'];
  for (const shell of shells) {
    it(`${shell} reads every quoted value back literally, as one word`, () => {
      for (const value of [...QUOTED.map(([v]) => v), ...PLAIN]) {
        expect(
          execFileSync(shell, ['-c', `printf %s ${quote(value)}`], { encoding: 'utf8' }),
          JSON.stringify(value),
        ).toBe(value);
        // One argument, not several: $# counts the words the shell made.
        expect(execFileSync(shell, ['-c', `set -- ${quote(value)}; printf %s "$#"`], { encoding: 'utf8' })).toBe('1');
      }
    });
  }
  it('/bin/sh here is a POSIX shell that is not bash (dash), so the test above is not only bash', () => {
    expect(execFileSync('/bin/sh', ['-c', 'printf %s "${BASH_VERSION:-none}"'], { encoding: 'utf8' })).toBe('none');
  });
  it('no quoted value runs a command', async () => {
    const { existsSync } = await import('node:fs');
    for (const [value] of QUOTED) execFileSync('/bin/sh', ['-c', `echo ${quote(value)} >/dev/null`]);
    expect(existsSync('/tmp/slipway-quote-pwned')).toBe(false);
  });
});

describe('sh, raw and script', () => {
  it('sh quotes every interpolated value and keeps the template text', () => {
    expect(sh`rm -rf ${'a b'} ${"y'z"} ${'plain'}`.text).toBe(`rm -rf 'a b' 'y'\\''z' plain`);
    expect(sh`cd ${'$(id)'} && ls ${'-la'}`.text).toBe(`cd '$(id)' && ls '-la'`);
    expect(sh`echo ${7}`.text).toBe('echo 7');
  });
  it('arrays become separately quoted words; raw fragments and nested Shells go in verbatim', () => {
    expect(sh`mkdir -p ${['a', 'b c', "d'e"]}`.text).toBe(`mkdir -p a 'b c' 'd'\\''e'`);
    expect(sh`ls ${raw('2>/dev/null')}`.text).toBe('ls 2>/dev/null');
    const inner = sh`echo ${'x y'}`;
    expect(sh`( ${inner} ) | cat`.text).toBe(`( echo 'x y' ) | cat`);
    expect(sh`x ${[raw('|'), 'a b']}`.text).toBe(`x | 'a b'`);
    expect(sh`x`).toBeInstanceOf(Shell);
    expect(String(sh`a ${'b c'}`)).toBe(`a 'b c'`);
  });
  it('refuses values that are not strings, numbers, Shells or arrays of them', () => {
    expect(() => sh`echo ${undefined as unknown as string}`).toThrow(/cannot interpolate undefined/);
    expect(() => sh`echo ${null as unknown as string}`).toThrow(TypeError);
    expect(() => sh`echo ${{} as unknown as string}`).toThrow(TypeError);
  });
  it('script joins lines and drops false/undefined ones', () => {
    expect(script(sh`set -eu`, false, undefined, sh`echo ${'a b'}`).text).toBe(`set -eu\necho 'a b'`);
  });
  it('a script built with sh runs under dash with the values intact', () => {
    const values = ["it's", '$(id)', 'two\nlines', '-n'];
    const out = execFileSync('/bin/sh', ['-c', script(sh`set -eu`, ...values.map((v) => sh`printf '%s|' ${v}`)).text], {
      encoding: 'utf8',
    });
    expect(out).toBe(values.map((v) => `${v}|`).join(''));
  });
});
