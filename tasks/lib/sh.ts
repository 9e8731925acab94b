// POSIX shell quoting: the one path by which any value reaches a shell line, local or remote.
// Single quotes are understood by dash, bash and busybox alike (zx's $'…' is bash-only).

/**
 * A value interpolated by `sh`: the string itself and its quoted form as it stands in the text; for an array of
 * strings, its elements (`list`), the quoted words joined by spaces.
 */
export interface Word {
  readonly value: string;
  readonly quoted: string;
  readonly list?: readonly string[];
}

/** A script's text as written (strings) and as filled in (words): lets a host send the one apart from the other. */
export type Part = string | Word;

/** A fragment already written as shell, inserted verbatim by `sh`. Only build it from constants. */
export class Shell {
  readonly parts: readonly Part[];
  constructor(
    readonly text: string,
    parts?: readonly Part[],
  ) {
    this.parts = parts ?? [text];
  }
  toString(): string {
    return this.text;
  }
}

export const raw = (text: string): Shell => new Shell(text);

export function quote(value: string | number): string {
  const text = String(value);
  if (text !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(text) && !text.startsWith('-')) return text;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

type Value = string | number | Shell | ReadonlyArray<string | number | Shell>;

const word = (value: string | number): Word => ({ value: String(value), quoted: quote(value) });

function render(value: Value): Part[] {
  if (value instanceof Shell) return [...value.parts];
  if (Array.isArray(value)) {
    if (value.some((v) => typeof v !== 'string' && typeof v !== 'number'))
      return value.flatMap((v, i) => (i ? [' ', ...render(v)] : render(v)));
    const list = value.map(String);
    const quoted = list.map(quote).join(' ');
    return [{ value: quoted, quoted, list }];
  }
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new TypeError(`sh: cannot interpolate ${String(value)} into a shell line`);
  }
  return [word(value)];
}

const textOf = (parts: readonly Part[]) => parts.map((p) => (typeof p === 'string' ? p : p.quoted)).join('');

/** Tagged template: every interpolated value is quoted, arrays become quoted words. */
export function sh(strings: TemplateStringsArray, ...values: Value[]): Shell {
  const parts: Part[] = [strings[0]];
  values.forEach((value, i) => {
    parts.push(...render(value), strings[i + 1]);
  });
  return new Shell(textOf(parts), parts);
}

/** Joins script lines; each line is a Shell built by `sh` or `raw`. */
export function script(...lines: Array<Shell | false | undefined>): Shell {
  const parts = lines
    .filter((l): l is Shell => l instanceof Shell)
    .flatMap((l, i) => (i ? ['\n', ...l.parts] : [...l.parts]));
  return new Shell(textOf(parts), parts);
}
