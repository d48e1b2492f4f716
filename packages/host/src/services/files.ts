/**
 * The files of the supervised services (dnsmasq, the IPv6 proxy): private to their owner and
 * never read or written through a link planted in their place.
 *
 * vmhost runs as root; a service directory lives in its state directory. Every file created here
 * is mode 0600 and every directory 0700, set with fchmod on the open descriptor, so the process
 * umask does not matter. Nothing follows a symbolic link: files are opened with `O_NOFOLLOW`
 * (a link is refused with the factory's error, naming the file), temporary files are created
 * with `O_EXCL` and renamed into place, non-regular files (FIFOs, devices) and files with more
 * than one hard link are refused. `O_NONBLOCK` keeps a planted FIFO from blocking the open.
 *
 * Files another program creates in the directory (dnsmasq's lease file and log) are created here
 * first, so that the program finds a private regular file and keeps its mode; the pidfile that
 * dnsmasq itself writes (0644) is set to 0600 once it is there ({@link makePrivate}).
 * @module
 */
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, ftruncateSync, lstatSync, mkdirSync, openSync, readSync, renameSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';

/** Mode of every file a service creates. */
export const PRIVATE_FILE_MODE = 0o600;
/** Mode of a service directory. */
export const PRIVATE_DIR_MODE = 0o700;

/** Builds the error thrown for a file (or directory) that cannot be used safely: `path` and why. */
export type FileErrorFactory = (path: string, reason: string, cause?: unknown) => Error;

/** A plain `Error` naming the file: for the service processes, which print it and exit 1. */
export const plainFileError: FileErrorFactory = (path, reason, cause) => new Error(`${path}: ${reason}`, cause !== undefined ? { cause } : undefined);

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_APPEND, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = constants;

function errnoOf(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** The reason for a failed open: a link (ELOOP), a FIFO without reader (ENXIO), else the message. */
function openFailure(err: unknown): string {
  switch (errnoOf(err)) {
    case 'ELOOP':
      return 'it is a symbolic link; refusing to open it (a service file must be a regular file vmhost made)';
    case 'ENXIO':
      return 'it is not a regular file (a FIFO or socket); refusing to open it';
    default:
      return `cannot open it: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** Checks an open descriptor: a regular file with one link; fixes its mode to 0600. Closes `fd` and throws otherwise. */
function checkRegular(fd: number, path: string, err: FileErrorFactory): Stats {
  const st = fstatSync(fd);
  const reason = !st.isFile() ? 'it is not a regular file; refusing to use it' : st.nlink !== 1 ? `it has ${st.nlink} hard links; refusing to use it` : undefined;
  if (reason !== undefined) {
    closeSync(fd);
    throw err(path, reason);
  }
  if ((st.mode & 0o7777) !== PRIVATE_FILE_MODE) fchmodSync(fd, PRIVATE_FILE_MODE);
  return st;
}

/**
 * Creates the directory `dir` (and missing parents) with mode 0700, or checks the one there: a
 * real directory (not a link), owned by this process's user; its mode is set to 0700.
 * @throws the factory's error for a link, a non-directory or a directory of another user.
 */
export function ensurePrivateDir(dir: string, err: FileErrorFactory): void {
  mkdirSync(dirname(dir), { recursive: true, mode: PRIVATE_DIR_MODE });
  try {
    mkdirSync(dir, { mode: PRIVATE_DIR_MODE });
  } catch (e) {
    if (errnoOf(e) !== 'EEXIST') throw err(dir, `cannot create the directory: ${(e as Error).message}`, e);
  }
  let fd: number;
  try {
    fd = openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  } catch (e) {
    // O_DIRECTORY|O_NOFOLLOW on a link fails with ENOTDIR (or ELOOP)
    const code = errnoOf(e);
    let link = code === 'ELOOP';
    try {
      link ||= lstatSync(dir).isSymbolicLink();
    } catch {
      /* gone meanwhile */
    }
    throw err(dir, link ? 'it is a symbolic link; refusing to use it as a service directory' : code === 'ENOTDIR' ? 'it is not a directory' : openFailure(e), e);
  }
  try {
    const st = fstatSync(fd);
    const euid = process.geteuid?.() ?? st.uid;
    if (st.uid !== euid) throw err(dir, `it is owned by uid ${st.uid}, not ${euid}; refusing to use it as a service directory`);
    if ((st.mode & 0o7777) !== PRIVATE_DIR_MODE) fchmodSync(fd, PRIVATE_DIR_MODE);
  } finally {
    closeSync(fd);
  }
}

/** How {@link openPrivateFile} opens: write from the start (emptied), append, or read and write keeping the content. */
export type PrivateOpenMode = 'truncate' | 'append' | 'keep';

/**
 * Opens (creating it if missing) the file `path` of a service for writing, as a private regular
 * file: `O_NOFOLLOW`, mode 0600 whatever the umask (an existing file's mode is set too),
 * `truncate` empties it only after the checks. Returns the descriptor; the caller closes it.
 * @throws the factory's error for a symbolic link, a FIFO/device/directory, or a hard-linked file.
 */
export function openPrivateFile(path: string, how: PrivateOpenMode, err: FileErrorFactory): number {
  const flags = (how === 'keep' ? O_RDWR : O_WRONLY) | O_CREAT | O_NOFOLLOW | O_NONBLOCK | (how === 'append' ? O_APPEND : 0);
  let fd: number;
  try {
    fd = openSync(path, flags, PRIVATE_FILE_MODE);
  } catch (e) {
    throw err(path, openFailure(e), e);
  }
  checkRegular(fd, path, err);
  if (how === 'truncate') ftruncateSync(fd, 0);
  return fd;
}

/** Creates `path` if missing (or checks it), private and regular; see {@link openPrivateFile}. */
export function touchPrivateFile(path: string, err: FileErrorFactory): void {
  closeSync(openPrivateFile(path, 'keep', err));
}

/**
 * Sets the mode of the existing file `path` to 0600, through a descriptor opened with
 * `O_NOFOLLOW` (for files another program created, such as dnsmasq's pidfile).
 * @throws the factory's error for a link or a non-regular file; a missing file is not an error.
 */
export function makePrivate(path: string, err: FileErrorFactory): void {
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return;
    throw err(path, openFailure(e), e);
  }
  checkRegular(fd, path, err);
  closeSync(fd);
}

/** Writes all of `data` at the descriptor's position (or at `position`). */
export function writeAll(fd: number, data: Buffer, position?: number): void {
  for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off, position === undefined ? null : position + off);
}

/**
 * Replaces `path` atomically with a private file holding `data`: written to `<path>.tmp`, created
 * with `O_CREAT|O_EXCL|O_NOFOLLOW` (0600 whatever the umask), flushed, then renamed over `path`.
 * A regular `.tmp` file left by an interrupted write is removed first; a link or anything else
 * there, or a link at `path` itself, is refused (somebody planted it): nothing is written.
 * @throws the factory's error naming the refused file.
 */
export function writePrivateFile(path: string, data: string | Buffer, err: FileErrorFactory): void {
  const tmp = `${path}.tmp`;
  refuseLink(path, err);
  let fd: number | undefined;
  for (let attempt = 0; fd === undefined; attempt++) {
    try {
      fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK, PRIVATE_FILE_MODE);
    } catch (e) {
      if (errnoOf(e) !== 'EEXIST' || attempt > 0) throw err(tmp, errnoOf(e) === 'EEXIST' ? 'it appeared again while it was being replaced; refusing to write' : openFailure(e), e);
      const st = lstatSync(tmp);
      if (st.isSymbolicLink()) throw err(tmp, 'it is a symbolic link; refusing to write through it (somebody planted it)');
      if (!st.isFile()) throw err(tmp, 'it is not a regular file; refusing to replace it');
      unlinkSync(tmp); // a leftover of an interrupted write
    }
  }
  try {
    fchmodSync(fd, PRIVATE_FILE_MODE);
    writeAll(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

/** Throws the factory's error when `path` is a symbolic link (a missing file is fine). */
export function refuseLink(path: string, err: FileErrorFactory): void {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (st.isSymbolicLink()) throw err(path, 'it is a symbolic link; refusing to write through it (somebody planted it)');
}

/**
 * Reads the regular file `path` without following a link (`O_NOFOLLOW`), at most its last
 * `maxBytes` bytes when given. Returns undefined when it is missing; a link or a non-regular file
 * is never read (the services' files are data, and a planted link must not make root read another
 * file): with `err` its error is thrown, without it undefined is returned.
 */
export function readPrivateFile(path: string, maxBytes?: number, err?: FileErrorFactory): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (e) {
    if (err === undefined || errnoOf(e) === 'ENOENT') return undefined;
    throw err(path, openFailure(e), e);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      if (err === undefined) return undefined;
      throw err(path, 'it is not a regular file; refusing to read it');
    }
    const start = maxBytes !== undefined && st.size > maxBytes ? st.size - maxBytes : 0;
    const buf = Buffer.alloc(st.size - start);
    let n = 0;
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, start + n);
      if (r === 0) break;
      n += r;
    }
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}
