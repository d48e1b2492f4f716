/**
 * The state file (`<stateDir>/state.json`): what apply made or changed, rewritten after every
 * step, so a crash leaves an accurate record; and the lock that lets one apply/down at a time
 * change a host.
 *
 * Format (version 1, unchanged since the first engine): `{ version: 1, name, entries, updatedAt }`,
 * each entry `{ id, kind, data, previous? }` as in entries.ts. A file of another version, or with
 * an entry of an unknown kind, is refused (`HostStateError`) rather than guessed at.
 * @module
 */
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, readPidfile, SystemError } from '@vmhost/net';
import { HostBusyError, HostStateError } from '../errors.js';
import { ENTRY_KINDS, type Entry } from './entries.js';

/** The state file's content. */
export interface StateFile {
  version: 1;
  name: string;
  entries: Entry[];
  updatedAt: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether `v` has the shape of an entry (its `data` is then trusted as the kind's: the engine wrote it). */
function isEntry(v: unknown): v is Entry {
  return isRecord(v) && typeof v.id === 'string' && ENTRY_KINDS.some((k) => k === v.kind) && isRecord(v.data) && (v.previous === undefined || typeof v.previous === 'string');
}

/** Creates the state directory; refuses one that others than its owner may write to, or a symlink. */
export function ensureStateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const st = lstatSync(dir);
  if (!st.isDirectory() || (st.mode & 0o022) !== 0) {
    throw new HostStateError(dir, 'the state directory must be a directory writable by its owner only (not a symlink, not group or world writable)');
  }
}

/** Reads the state file of `dir` (an empty state when there is none). */
export function readState(dir: string, name: string): StateFile {
  const file = join(dir, 'state.json');
  if (!existsSync(file)) return { version: 1, name, entries: [], updatedAt: new Date(0).toISOString() };
  let s: unknown;
  try {
    s = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new HostStateError(file, `not a vmhost state file (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  if (!isRecord(s) || s.version !== 1 || !Array.isArray(s.entries)) {
    throw new HostStateError(file, `not a vmhost state file (version ${String(isRecord(s) ? s.version : undefined)})`);
  }
  const entries: Entry[] = [];
  for (const e of s.entries) {
    if (!isEntry(e)) throw new HostStateError(file, `not a vmhost state file (an entry of unknown shape: ${JSON.stringify(e)?.slice(0, 80)})`);
    entries.push(e);
  }
  return { version: 1, name: typeof s.name === 'string' ? s.name : name, entries, updatedAt: typeof s.updatedAt === 'string' ? s.updatedAt : '' };
}

/** Writes the state file atomically (a new file, never through a symlink, renamed over the old one). */
export function writeState(dir: string, s: StateFile): void {
  ensureStateDir(dir);
  const file = join(dir, 'state.json');
  const tmp = `${file}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, `${JSON.stringify({ ...s, updatedAt: new Date().toISOString() }, null, 2)}\n`, { flag: 'wx', mode: 0o644 });
  renameSync(tmp, file);
}

/**
 * One apply/down at a time per state directory: a lock file holding the pid (a dead holder's lock
 * is taken over). Returns the unlock function.
 * @throws {HostBusyError} when a live process holds the lock.
 */
export function lock(dir: string): () => void {
  ensureStateDir(dir);
  const file = join(dir, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o644);
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (err) {
      if (!(err instanceof Error && 'code' in err && err.code === 'EEXIST')) throw SystemError.from(err, `locking ${file}`);
      const pid = readPidfile(file);
      if (pid !== undefined && pid !== process.pid && isAlive(pid)) throw new HostBusyError(file, pid);
      unlinkSync(file);
    }
  }
  throw new HostBusyError(file);
}
