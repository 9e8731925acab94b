// The artifact store a build publishes to and hosts fetch from (dir, http, s3).
/** How a host gets an object: a path it can read (dir store) or a URL for curl (http, presigned s3). */
export type HostSource = { path: string } | { url: string };

export interface ArtifactStore {
  /** For output, e.g. "dir /var/artifacts" or "s3 bucket/prefix": never a credential. */
  readonly description: string;
  /** Uploads a local file to key; a reader never sees a half-written object under key. */
  putFile(key: string, file: string): Promise<void>;
  putText(key: string, text: string): Promise<void>;
  /** The object's text, or undefined when there is no such key. */
  getText(key: string): Promise<string | undefined>;
  /** Every key under prefix (recursively), sorted. */
  list(prefix: string): Promise<string[]>;
  remove(key: string): Promise<void>;
  /** How a host fetches key (valid at least an hour); never holds a long-lived credential. */
  sourceForHost(key: string): Promise<HostSource>;
}
