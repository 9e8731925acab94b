// The `http` store: a WebDAV-capable server (nginx: dav_methods PUT DELETE; autoindex_format json for listing).
// PUT publishes (nginx writes the body to a temporary file and renames it into place, so a reader never sees
// half an object), GET fetches, DELETE removes. Hosts fetch with curl from the same URL, without credentials; the
// deployer's own requests carry HTTP basic auth when SLIPWAY_STORE_AUTH ("user:password", from the environment or
// .env) is set.
import { readFile } from 'node:fs/promises';
import { checkKey } from './keys.js';
import type { ArtifactStore, HostSource } from './store.js';

export class HttpStore implements ArtifactStore {
  readonly description: string;
  private readonly base: string;

  private readonly authorization?: string;

  constructor(url: string, auth?: string) {
    this.base = url.replace(/\/+$/, '');
    if (auth) this.authorization = `Basic ${Buffer.from(auth).toString('base64')}`;
    // A URL's user:password part is never shown.
    const shown = new URL(this.base);
    shown.username = '';
    shown.password = '';
    this.description = `http ${shown.toString().replace(/\/+$/, '')}`;
  }

  private url(key: string): string {
    return `${this.base}/${checkKey(key)}`;
  }

  /** A folder's listing URL (with its trailing slash); '' is the store's top. */
  private dirUrl(dir: string): string {
    return dir ? `${this.url(dir)}/` : `${this.base}/`;
  }

  private async send(method: string, key: string, body?: Buffer | string, url = this.url(key)): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: this.authorization ? { authorization: this.authorization } : {},
        body: body as BodyInit | undefined,
        signal: AbortSignal.timeout(300_000),
      });
    } catch (error) {
      const cause = (error as Error & { cause?: Error }).cause?.message ?? (error as Error).message;
      throw new Error(`store ${this.description}: ${method} ${key} failed: ${cause}`);
    }
    return response;
  }

  private async put(key: string, body: Buffer | string): Promise<void> {
    const response = await this.send('PUT', key, body);
    await response.arrayBuffer();
    if (!response.ok) throw new Error(`store ${this.description}: PUT ${key}: HTTP ${response.status}`);
  }

  async putFile(key: string, file: string): Promise<void> {
    await this.put(key, await readFile(file));
  }

  putText(key: string, text: string): Promise<void> {
    return this.put(key, text);
  }

  async getText(key: string): Promise<string | undefined> {
    const response = await this.send('GET', key);
    const text = await response.text();
    if (response.status === 404) return undefined;
    if (!response.ok) throw new Error(`store ${this.description}: GET ${key}: HTTP ${response.status}`);
    return text;
  }

  /** Walks the server's JSON directory listings (nginx autoindex_format json). */
  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      const response = await this.send('GET', `${dir}/`, undefined, this.dirUrl(dir));
      const text = await response.text();
      if (response.status === 404) return;
      if (!response.ok) throw new Error(`store ${this.description}: listing ${dir}/: HTTP ${response.status}`);
      let entries: Array<{ name: string; type: string }>;
      try {
        entries = JSON.parse(text);
      } catch {
        throw new Error(`store ${this.description}: ${dir}/ is not a JSON listing (set autoindex_format json)`);
      }
      for (const e of entries) {
        const key = dir ? `${dir}/${e.name}` : e.name;
        if (e.type === 'directory') await walk(key);
        else if (e.type === 'file') keys.push(key);
      }
    };
    await walk(prefix.replace(/\/+$/, ''));
    return keys.sort();
  }

  async remove(key: string): Promise<void> {
    const response = await this.send('DELETE', key);
    await response.arrayBuffer();
    if (!response.ok && response.status !== 404)
      throw new Error(`store ${this.description}: DELETE ${key}: HTTP ${response.status}`);
  }

  async sourceForHost(key: string): Promise<HostSource> {
    return { url: this.url(key) };
  }
}
