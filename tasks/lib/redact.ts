// The run's secrets (.env values) and every form in which one can reach text we print or write:
// raw, shell-quoted, JSON-escaped, URL-encoded, each line of a multi-line value, and the password
// of a URL. Process-wide and filled as each .env file is read, so that an error raised while the
// config is evaluated, or a failed command's tail, is redacted like everything else.

/**
 * Shorter values are never redacted ("1", "true" would hide unrelated text); load.ts refuses short
 * secret-looking ones.
 */
export const MIN_SECRET_LENGTH = 4;

/** The password in a URL-shaped value (postgres://user:password@host/db), raw and decoded. */
function urlPasswords(value: string): string[] {
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^@\s]*:[^@\s]*@/i.test(value)) return [];
  try {
    const password = new URL(value).password;
    return password ? [password, decodeURIComponent(password)] : [];
  } catch {
    return [];
  }
}

function formsOf(value: string): string[] {
  const lines = value.includes('\n') ? value.split(/\r?\n/).map((line) => line.trim()) : [];
  const shellQuoted = (v: string) => v.replace(/'/g, `'\\''`);
  return [value, ...lines, ...urlPasswords(value)].flatMap((v) => [
    v,
    shellQuoted(v),
    JSON.stringify(v).slice(1, -1),
    encodeURIComponent(v),
  ]);
}

export class Secrets {
  /** Longest first: a secret that contains another is replaced whole. */
  private forms: string[] = [];

  add(values: Iterable<string>): this {
    const forms = [...values].flatMap(formsOf).filter((f) => f.length >= MIN_SECRET_LENGTH);
    this.forms = [...new Set([...this.forms, ...forms])].sort((a, b) => b.length - a.length);
    return this;
  }

  redact(text: string): string {
    let result = text;
    for (const form of this.forms) result = result.split(form).join('***');
    return result;
  }

  /** Whether the text holds any secret, in any of its forms (a rendered file holding one is private). */
  foundIn(text: string): boolean {
    return this.forms.some((form) => text.includes(form));
  }
}

/** This process's secrets: every .env value read so far. */
export const secrets = new Secrets();

/** Keys whose values are secrets by their name; such a value under MIN_SECRET_LENGTH could not be redacted. */
export const SECRET_KEY = /PASS|PWD|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|PRIVATE/i;
