/**
 * The state directory as a trust boundary. vmhost runs as root and acts on what its state
 * directory holds (the record of what it made, pidfiles, QMP sockets), so nobody else may be able
 * to change what is there:
 *
 * - every directory from `/` down to the state directory is owned by root or the running user and
 *   is not writable by group or others, except a sticky directory above the state directory (such
 *   as `/tmp`): others may add entries there but cannot rename or remove ours, and the entry below
 *   it must be ours (so `mkdtemp` under /tmp is safe; `/tmp` itself as the state directory is not);
 * - a symlink on the way is followed only when root or the running user owns it, and its target is
 *   checked the same way, component by component;
 * - the state directory and every directory vmhost makes in it are 0700 and the running user's;
 *   files are 0600, created with `O_CREAT|O_EXCL|O_NOFOLLOW` (a new temp file renamed over the old
 *   one), their mode set with fchmod, whatever the umask;
 * - files are read with `O_NOFOLLOW` and must be regular files of the running user, not writable
 *   by others, and of bounded size.
 *
 * Every refusal is a {@link HostStateError} `EHOST_STATE_UNSAFE` naming the path and the reason.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants, fchmodSync, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readlinkSync, readSync, renameSync, rmSync, statSync, writeSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { isAlive, SystemError, ValidationError } from '@vmhost/net';
import { HostBusyError, HostStateError } from '../errors.js';

const { O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_RDONLY, O_WRONLY } = constants;
const MAX_SYMLINKS = 40;

/** The running user's uid. */
const me = (): number => process.getuid?.() ?? 0;

function unsafe(path: string, why: string): HostStateError {
  return new HostStateError(path, why, { code: 'EHOST_STATE_UNSAFE' });
}

const octal = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0');

/** Whether root or the running user owns it. */
const trustedOwner = (st: Stats): boolean => st.uid === 0 || st.uid === me();

function ownerText(): string {
  return me() === 0 ? 'root' : `root or uid ${me()}`;
}

/** Refuses a directory on the way to (or being) the state directory that others could change. */
function checkDir(path: string, st: Stats, final: boolean): void {
  if (!trustedOwner(st)) throw unsafe(path, `owned by uid ${st.uid}, not ${ownerText()}`);
  const othersWrite = (st.mode & 0o022) !== 0;
  if (!othersWrite) return;
  if (final) throw unsafe(path, `the state directory is writable by group or others (mode ${octal(st.mode)}); it must be 0700`);
  if ((st.mode & 0o1000) === 0) throw unsafe(path, `writable by group or others (mode ${octal(st.mode)}) and not sticky: others could replace what is below it`);
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if (err instanceof Error && 'code' in err && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return undefined;
    throw SystemError.from(err, `checking ${path}`);
  }
}

/** Thrown by {@link mkdirPrivate} when the directory above went meanwhile (another run removed it empty). */
class ParentGone extends Error {
  constructor(
    readonly path: string,
    readonly error: unknown,
  ) {
    super(path);
  }
}

/** mkdir 0700 (an existing one is fine: it is checked next). */
function mkdirPrivate(path: string): void {
  try {
    mkdirSync(path, { mode: 0o700 });
    chmodSync(path, 0o700); // the umask may have taken bits off: exactly 0700
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'EEXIST') return;
    if (err instanceof Error && 'code' in err && err.code === 'ENOENT') throw new ParentGone(path, err);
    throw SystemError.from(err, `creating ${path}`);
  }
}

/**
 * Checks the path of the state directory `dir` as the module says, walking it from `/` (symlinks
 * resolved by hand, each checked). With `create`, missing directories are made (0700) on the way
 * and the state directory's mode is set to 0700; without, a missing part ends the walk.
 * `keepSearchable` leaves a state directory of mode 0711 as it is (a data directory QEMU passes
 * through: {@link dataDir}).
 * @returns the state directory's real path (symlinks resolved: the one path every file and
 *   process of the host is named by), or undefined when it does not exist (only without `create`).
 * @throws {HostStateError} `EHOST_STATE_UNSAFE` naming the first unsafe path.
 * @throws {ValidationError} when `dir` is not absolute.
 */
export function checkStateDir(dir: string, create: boolean, options: { keepSearchable?: boolean } = {}): string | undefined {
  if (typeof dir !== 'string' || !isAbsolute(dir)) throw new ValidationError('stateDir', dir, 'expected an absolute path');
  // A directory on the way that another run removed when it left it empty (down removes the
  // namespace's directory under /run/vmhost after its last host) between our check and our
  // mkdir: walk again.
  for (let attempt = 0; ; attempt++) {
    try {
      return walkStateDir(dir, create, options);
    } catch (err) {
      if (!(err instanceof ParentGone)) throw err;
      if (attempt >= 4) throw SystemError.from(err.error, `creating ${err.path}`);
    }
  }
}

function walkStateDir(dir: string, create: boolean, options: { keepSearchable?: boolean }): string | undefined {
  const todo = normalize(dir).split('/').filter((p) => p !== '' && p !== '.');
  let cur = '/';
  checkDir('/', lstatSync('/'), todo.length === 0);
  let links = 0;
  while (todo.length > 0) {
    const name = todo.shift()!;
    if (name === '..') {
      cur = dirname(cur);
      continue;
    }
    const next = join(cur, name);
    let st = lstatOrUndefined(next);
    if (st === undefined) {
      if (!create) return undefined;
      mkdirPrivate(next);
      st = lstatSync(next);
    }
    if (st.isSymbolicLink()) {
      if (!trustedOwner(st)) throw unsafe(next, `a symlink owned by uid ${st.uid} (only symlinks of ${ownerText()} are followed)`);
      if (++links > MAX_SYMLINKS) throw unsafe(dir, 'too many levels of symlinks');
      const target = readlinkSync(next);
      if (target.startsWith('/')) cur = '/';
      todo.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
      continue;
    }
    if (!st.isDirectory()) throw unsafe(next, 'not a directory');
    const final = todo.length === 0;
    checkDir(next, st, final);
    if (final && create && (st.mode & 0o077) !== 0 && !(options.keepSearchable && (st.mode & 0o777) === 0o711)) chmodSync(next, 0o700);
    cur = next;
  }
  return cur;
}

/**
 * Makes (or checks) the directory `parts` under the checked state directory `dir`, each level 0700
 * and the running user's, never through a symlink. Returns its path.
 * @throws {HostStateError} `EHOST_STATE_UNSAFE` for a level that is a symlink, not a directory,
 *   another user's, or writable by others.
 */
export function privateDir(dir: string, ...parts: string[]): string {
  let cur = dir;
  for (const p of parts) cur = ownDir(join(cur, p), false);
  return cur;
}

/** Makes or checks one directory of ours (see {@link privateDir}); 0700, or 0711 kept when `keepSearchable`. */
function ownDir(path: string, keepSearchable: boolean): string {
  mkdirPrivate(path);
  const st = lstatSync(path);
  if (st.isSymbolicLink() || !st.isDirectory()) throw unsafe(path, 'expected a directory (not a symlink) made by vmhost');
  if (st.uid !== me()) throw unsafe(path, `owned by uid ${st.uid}, not by uid ${me()}`);
  if ((st.mode & 0o022) !== 0) throw unsafe(path, `writable by group or others (mode ${octal(st.mode)})`);
  if ((st.mode & 0o077) !== 0 && !(keepSearchable && (st.mode & 0o777) === 0o711)) chmodSync(path, 0o700);
  return path;
}

/**
 * Makes (or checks) the data directory `parts` under the checked directory `dir` as
 * {@link privateDir} does, except for the mode: with `searchable` true every level is 0711 (others
 * may pass through to a file they were given, e.g. QEMU running as another user reopening its
 * images by name, but not list or change anything), false 0700, undefined whichever of the two it
 * is (anything else becomes 0700). Root's and not group/world-writable either way.
 * @throws {HostStateError} `EHOST_STATE_UNSAFE` as {@link privateDir}.
 */
export function dataDir(dir: string, parts: readonly string[], searchable?: boolean): string {
  let cur = dir;
  for (const p of parts) {
    cur = ownDir(join(cur, p), true);
    setSearchable(cur, searchable);
  }
  return cur;
}

/** Sets the mode of the checked directory `path` to 0711 (`searchable`), 0700 (false), or keeps 0700/0711 (undefined). */
export function setSearchable(path: string, searchable: boolean | undefined): void {
  const mode = lstatSync(path).mode & 0o777;
  const want = searchable === undefined ? (mode === 0o711 ? 0o711 : 0o700) : searchable ? 0o711 : 0o700;
  if (mode !== want) chmodSync(path, want);
}

/**
 * The first directory from `/` down to `path`'s parent (and `path` itself when it is a directory)
 * that the user `ids` cannot pass through (search permission as owner, group or other; root's own
 * bypass does not count), or undefined when it reaches every one (or a part is missing). Symlinks
 * on the way are followed.
 */
export function unreachableBy(path: string, ids: { uid: number; gid: number }): string | undefined {
  const parts = normalize(path).split('/').filter((p) => p !== '');
  let cur = '/';
  for (let k = 0; k <= parts.length; k++) {
    let st: Stats;
    try {
      st = statSync(cur);
    } catch {
      return undefined; // missing: nothing to pass through (yet)
    }
    if (!st.isDirectory()) return undefined;
    const bit = st.uid === ids.uid ? 0o100 : st.gid === ids.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) return cur;
    if (k < parts.length) cur = join(cur, parts[k]!);
  }
  return undefined;
}

/** Writes all of `buf` to `fd`. */
function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off);
}

/** Creates `path` exclusively (never through a symlink), 0600, with `content` (fsync'd when `durable`). @throws the fs error (EEXIST, ...) */
function createExclusive(path: string, content: string, durable = false): void {
  const fd = openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeAll(fd, Buffer.from(content));
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsync of the directory `dir` (a rename in it made durable). */
function syncDir(dir: string): void {
  const fd = openSync(dir, O_RDONLY | O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Replaces `path` with `content` atomically: a new temp file next to it (`O_EXCL|O_NOFOLLOW`,
 * 0600) renamed over it. Not fsync'd by default: see docs/host-engine.md (the state file describes
 * kernel objects and processes, which a power loss ends too; the order of writes is kept against
 * the death of the process, which is what the record must survive). `durable` fsyncs the file
 * before the rename and the directory after it, for a record of what outlives a power loss (a
 * VM's disk chain).
 * @throws {SystemError} naming `path` (ENOSPC, EROFS, ...); the old file is then unchanged.
 */
export function writePrivateFile(path: string, content: string, options: { durable?: boolean } = {}): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    createExclusive(tmp, content, options.durable);
    renameSync(tmp, path);
    if (options.durable) syncDir(dirname(path));
  } catch (err) {
    rmSync(tmp, { force: true });
    throw SystemError.from(err, `writing ${path}`);
  }
}

/**
 * Reads the file `path` of the state directory: never through a symlink, only a regular file of
 * the running user that others cannot write, at most `maxBytes`. Undefined when there is none.
 * @throws {HostStateError} `EHOST_STATE_UNSAFE` (symlink, owner, mode) or `EHOST_STATE_CORRUPT` (too big).
 */
export function readPrivateFile(path: string, maxBytes: number): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NOFOLLOW);
  } catch (err) {
    if (err instanceof Error && 'code' in err) {
      if (err.code === 'ENOENT') return undefined;
      if (err.code === 'ELOOP') throw unsafe(path, 'a symlink (vmhost never reads its files through symlinks)');
    }
    throw SystemError.from(err, `reading ${path}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw unsafe(path, 'not a regular file');
    if (st.uid !== me()) throw unsafe(path, `owned by uid ${st.uid}, not by uid ${me()}`);
    if ((st.mode & 0o022) !== 0) throw unsafe(path, `writable by group or others (mode ${octal(st.mode)})`);
    if (st.size > maxBytes) throw new HostStateError(path, `${st.size} bytes, more than the ${maxBytes} a vmhost state file can have`);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** The locks this process holds, by lock file, with how many times each is held. */
const held = new Map<string, number>();

/** Lets go of one hold of `file`; the last removes it. */
function release(file: string): void {
  const n = held.get(file) ?? 0;
  if (n > 1) {
    held.set(file, n - 1);
    return;
  }
  held.delete(file);
  rmSync(file, { force: true });
}

/**
 * One apply/down/recover at a time per state directory: the lock file `lock` holding the pid,
 * created exclusively (0600, never through a symlink). A dead holder's lock is taken over. A lock
 * this process holds already is held once more (`vmhost run` holds it for its whole life and calls
 * apply under it); it goes when the last hold is let go. Returns the unlock function (idempotent).
 * @throws {HostBusyError} when a live process holds the lock.
 */
export function lock(dir: string): () => void {
  return lockFile(join(dir, 'lock'));
}

/**
 * Takes the lock file `file` as {@link lock} does (in a checked directory), re-entrantly within
 * this process.
 * @throws {HostBusyError} when a live process holds it.
 */
export function lockFile(file: string): () => void {
  let released = false;
  const unlock = (): void => {
    if (released) return;
    released = true;
    release(file);
  };
  const n = held.get(file);
  if (n !== undefined) {
    held.set(file, n + 1);
    return unlock;
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      createExclusive(file, `${process.pid}\n`);
      held.set(file, 1);
      return unlock;
    } catch (err) {
      if (!(err instanceof Error && 'code' in err && err.code === 'EEXIST')) throw SystemError.from(err, `locking ${file}`);
      let pid: number | undefined;
      try {
        const text = readPrivateFile(file, 64);
        pid = text !== undefined && /^\d+\n?$/.test(text) ? Number(text) : undefined;
      } catch {
        pid = undefined; // a symlink or another user's file: not a lock of ours, replaced below
      }
      if (pid !== undefined && pid !== process.pid && isAlive(pid)) throw new HostBusyError(file, pid);
      rmSync(file, { force: true });
    }
  }
  throw new HostBusyError(file);
}
