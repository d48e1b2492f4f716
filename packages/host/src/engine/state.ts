/**
 * The state file (`<stateDir>/state.json`): the record of what apply made (records.ts), written
 * ahead of every change and confirmed after it (run.ts, steps.ts), read strictly, never through a
 * symlink, from a state directory checked as a trust boundary (state-dir.ts). A file that cannot
 * be read as a state file is moved aside (`state.json.corrupt-<time>`) by the commands that
 * rebuild the record from the live system's owner marks (recover.ts).
 * @module
 */
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { SystemError } from '@vmhost/net';
import { HostStateError } from '../errors.js';
import { parseState, STATE_VERSION, type StateFile, type StateRecord } from './records.js';
import { readPrivateFile, writePrivateFile } from './state-dir.js';

export type { StateFile, StateRecord } from './records.js';

/** A state file larger than this is refused (a host of 500 VMs needs well under 1 MiB). */
export const MAX_STATE_BYTES = 4 * 1024 * 1024;

/** The state file of the state directory `dir`. */
export const stateFile = (dir: string): string => join(dir, 'state.json');

/** An empty state of the host `name`. */
export function emptyState(name: string): StateFile {
  return { version: STATE_VERSION, name, entries: [], updatedAt: new Date(0).toISOString() };
}

/**
 * Reads the state file of `dir` (an empty state when there is none). The directory must have
 * been checked (state-dir.ts `checkStateDir`).
 * @throws {HostStateError} naming the file: `EHOST_STATE_CORRUPT`, `EHOST_STATE_VERSION`, `EHOST_STATE_UNSAFE`.
 */
export function readState(dir: string, name: string): StateFile {
  const file = stateFile(dir);
  const text = readPrivateFile(file, MAX_STATE_BYTES);
  return text === undefined ? emptyState(name) : parseState(text, file, dir);
}

/**
 * Writes the state file of `dir` atomically (a new 0600 file renamed over the old one).
 * @throws {SystemError} naming the file (ENOSPC, ...): the old file is then unchanged.
 */
export function writeState(dir: string, s: StateFile): void {
  writePrivateFile(stateFile(dir), `${JSON.stringify({ ...s, updatedAt: new Date().toISOString() }, null, 1)}\n`);
}

/**
 * Moves the state file of `dir` aside to `state.json.corrupt-<ISO time>`; returns the new path.
 * @throws {SystemError} naming the file.
 */
export function moveAside(dir: string): string {
  const file = stateFile(dir);
  const to = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  try {
    renameSync(file, to);
  } catch (err) {
    throw SystemError.from(err, `moving ${file} aside`);
  }
  return to;
}

/** Whether `err` says the state file cannot be read as one (and may be rebuilt from the live system). */
export function isCorrupt(err: unknown): err is HostStateError {
  return err instanceof HostStateError && err.code === 'EHOST_STATE_CORRUPT';
}

/** The record of `id`, if any. */
export function findRecord(s: StateFile, id: string): StateRecord | undefined {
  return s.entries.find((e) => e.id === id);
}

/** Puts `r` in place of the record of its id, or at `at` (default: the end) when there is none. */
export function putRecord(s: StateFile, r: StateRecord, at?: number): void {
  const i = s.entries.findIndex((e) => e.id === r.id);
  if (i >= 0) s.entries[i] = r;
  else if (at !== undefined && at >= 0 && at <= s.entries.length) s.entries.splice(at, 0, r);
  else s.entries.push(r);
}

/** Removes the record of `id`; returns its index (-1 when there was none). */
export function dropRecord(s: StateFile, id: string): number {
  const i = s.entries.findIndex((e) => e.id === id);
  if (i >= 0) s.entries.splice(i, 1);
  return i;
}
