// The `dir` store: a local or mounted folder. Objects are written under a temporary name and renamed into
// place; hosts read an object by its path (the folder must be at the same path on them).
import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { checkKey } from './keys.js';
import type { ArtifactStore, HostSource } from './store.js';

export class DirStore implements ArtifactStore {
  readonly description: string;

  constructor(private readonly root: string) {
    this.description = `dir ${root}`;
  }

  private file(key: string): string {
    return path.join(this.root, checkKey(key));
  }

  /** Writes beside the target, then renames: a reader sees the old object or the whole new one. */
  private async place(key: string, write: (tmp: string) => Promise<void>): Promise<void> {
    const target = this.file(key);
    await mkdir(path.dirname(target), { recursive: true });
    const tmp = `${target}.tmp-${randomUUID()}`;
    try {
      await write(tmp);
      await rename(tmp, target);
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
  }

  putFile(key: string, file: string): Promise<void> {
    return this.place(key, (tmp) => copyFile(file, tmp));
  }

  putText(key: string, text: string): Promise<void> {
    return this.place(key, (tmp) => writeFile(tmp, text));
  }

  async getText(key: string): Promise<string | undefined> {
    try {
      return await readFile(this.file(key), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const dir = path.join(this.root, prefix);
    try {
      const entries = await readdir(dir, { recursive: true, withFileTypes: true });
      return entries
        .filter((e) => e.isFile() && !/\.tmp-[0-9a-f-]{36}$/.test(e.name))
        .map((e) => path.relative(this.root, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
        .sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  async remove(key: string): Promise<void> {
    await rm(this.file(key), { force: true });
  }

  async sourceForHost(key: string): Promise<HostSource> {
    return { path: this.file(key) };
  }
}
