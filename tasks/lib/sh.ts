// POSIX shell quoting: the one path by which any value reaches a shell line, local or remote.
// Single quotes are understood by dash, bash and busybox alike (zx's $'…' is bash-only).

/** A fragment already written as shell, inserted verbatim by `sh`. Only build it from constants. */
export class Shell {
  constructor(readonly text: string) {}
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

function render(value: Value): string {
  if (value instanceof Shell) return value.text;
  if (Array.isArray(value)) return value.map((v) => render(v)).join(' ');
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new TypeError(`sh: cannot interpolate ${String(value)} into a shell line`);
  }
  return quote(value);
}

/** Tagged template: every interpolated value is quoted, arrays become quoted words. */
export function sh(strings: TemplateStringsArray, ...values: Value[]): Shell {
  let text = strings[0];
  values.forEach((value, i) => {
    text += render(value) + strings[i + 1];
  });
  return new Shell(text);
}

/** Joins script lines; each line is a Shell built by `sh` or `raw`. */
export function script(...lines: Array<Shell | false | undefined>): Shell {
  return new Shell(
    lines
      .filter((l): l is Shell => l instanceof Shell)
      .map((l) => l.text)
      .join('\n'),
  );
}
