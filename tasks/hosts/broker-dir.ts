// Where the keepConnections broker listens, and the checks that make it this user's alone: the
// directory ($XDG_RUNTIME_DIR/slipway, else $TMPDIR/slipway-<uid>) and every directory above it are
// checked as OpenSSH checks its own files, and the directory is then used through a descriptor held
// open, so a directory swapped in after the check is never the one connected to.
import {
  realpathSync,
  statSync,
  closeSync,
  constants,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  lstatSync,
  type Stats,
} from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';

/** The checked broker directory, pinned by its descriptor. */
export interface BrokerDir {
  fd: number;
  /**
   * The directory through its descriptor. Node cannot connect a unix socket relative to a directory
   * fd (no connectat), but a path through /proc/self/fd/<fd> resolves to the directory the fd holds,
   * whatever is renamed over the name meanwhile: the swap the one-time check of a path would miss.
   */
  pinned: string;
  /** The directory's name, for messages. */
  shown: string;
}

export function brokerDirName(): string {
  const runtime = process.env.XDG_RUNTIME_DIR;
  return runtime ? path.join(runtime, 'slipway') : path.join(tmpdir(), `slipway-${userInfo().uid}`);
}

/**
 * Why a directory above the broker's would let someone else replace it, or undefined: like OpenSSH's
 * safe_path, each must be root's or ours and not writable by group or others, except with the sticky
 * bit (as /tmp has), which stops others from renaming what is ours.
 */
function unsafeAncestor(dir: string, uid: number): string | undefined {
  for (let current = realpathSync(path.dirname(dir)); ; current = path.dirname(current)) {
    const stat = statSync(current);
    if (stat.uid !== 0 && stat.uid !== uid) return `${current} belongs to another user`;
    if ((stat.mode & 0o022) !== 0 && (stat.mode & 0o1000) === 0)
      return `${current} is writable by others without the sticky bit`;
    if (path.dirname(current) === current) return undefined;
  }
}

/** Opens (creating it if need be) this user's broker directory, or says why it is not safe to use. */
export function openBrokerDir(): BrokerDir | { unsafe: string } {
  if (!existsSync('/proc/self/fd')) return { unsafe: 'it needs /proc/self/fd (Linux)' };
  const uid = userInfo().uid;
  const dir = brokerDirName();
  let ancestor: string | undefined;
  try {
    ancestor = unsafeAncestor(dir, uid);
  } catch (error) {
    return {
      unsafe: `cannot check ${path.dirname(dir)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    };
  }
  if (ancestor) return { unsafe: ancestor };
  const notOurs = { unsafe: `${dir} must be a directory of yours with mode 0700` };
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch {
    // it exists (checked below), or cannot be made (then the open below fails)
  }
  let fd: number;
  try {
    // O_NOFOLLOW: a symlink planted at the name is refused, not followed to someone else's directory.
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch {
    return notOurs; // a file, a symlink, or nothing we may create
  }
  const stat = fstatSync(fd);
  if (!stat.isDirectory() || stat.uid !== uid || (stat.mode & 0o077) !== 0) {
    closeSync(fd);
    return notOurs;
  }
  return { fd, pinned: `/proc/self/fd/${fd}`, shown: dir };
}

/** Whether the broker socket in the directory is absent (false) or a socket of ours (true); anything else is unsafe. */
export function brokerSocketState(dir: BrokerDir): boolean | { unsafe: string } {
  let stat: Stats;
  try {
    stat = lstatSync(path.join(dir.pinned, 'broker.sock'));
  } catch {
    return false;
  }
  if (!stat.isSocket() || stat.uid !== userInfo().uid)
    return { unsafe: `${path.join(dir.shown, 'broker.sock')} is not a socket of yours` };
  return true;
}
