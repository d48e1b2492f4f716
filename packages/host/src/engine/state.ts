/**
 * The state file (`<stateDir>/state.json`): the record of what apply made (records.ts), written
 * ahead of every change and confirmed after it (run.ts, steps.ts) through its journal
 * (`state.log`, journal.ts: one appended line per change, compacted into the state file), read
 * strictly, never through a symlink, from a state directory checked as a trust boundary
 * (state-dir.ts). A file that cannot be read as a state file (or journal) is moved aside
 * (`state.json.corrupt-<time>`) by the commands that rebuild the record from the live system's
 * owner marks (recover.ts).
 * @module
 */
import { createHash } from 'node:crypto';
import { lstatSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { SystemError } from '@vmhost/net';
import { HostStateError } from '../errors.js';
import { journalFile, removeJournal, replayJournal } from './journal.js';
import { parseState, STATE_VERSION, type Known, type StateFile, type StateRecord } from './records.js';
import { readPrivateFile, writePrivateFile } from './state-dir.js';

export type { StateFile, StateRecord } from './records.js';
export { dropRecord, Journal, putRecord } from './journal.js';

/** A state file larger than this is refused (a host of 500 VMs needs well under 1 MiB). */
export const MAX_STATE_BYTES = 4 * 1024 * 1024;

/** The state file of the state directory `dir`. */
export const stateFile = (dir: string): string => join(dir, 'state.json');

/** An empty state of the host `name`. */
export function emptyState(name: string): StateFile {
  return { version: STATE_VERSION, name, entries: [], updatedAt: new Date(0).toISOString() };
}

/** What {@link loadState} read. */
export interface LoadedState {
  state: StateFile;
  /** The sha256 of the state file's bytes (null: there is none): the base of a journal of this run. */
  base: string | null;
  /** Whether a journal was replayed (the state file is then behind the record: compact it). */
  replayed: boolean;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * Reads the state file of `dir` and replays its journal (journal.ts): the record (an empty state
 * when there is none). The directory must have been checked (state-dir.ts `checkStateDir`).
 * `known`: what the run wants (records.ts {@link Known}).
 * @throws {HostStateError} naming the file (the state file or its journal): `EHOST_STATE_CORRUPT`,
 *   `EHOST_STATE_VERSION`, `EHOST_STATE_UNSAFE`.
 */
export function loadState(dir: string, name: string, known: Known = {}): LoadedState {
  const { state, base, replayed } = readRecord(dir, name, known);
  return { state, base: base(), replayed };
}

/**
 * The state file's record with its journal replayed, and the sha256 of the file's bytes (null:
 * there is none), hashed when first asked for: by a journal to replay, or by {@link loadState}.
 */
function readRecord(dir: string, name: string, known: Known): { state: StateFile; base: () => string | null; replayed: boolean } {
  const file = stateFile(dir);
  const text = readPrivateFile(file, MAX_STATE_BYTES);
  const state = text === undefined ? emptyState(name) : parseState(text, file, dir, known);
  let hash: string | undefined;
  const base = (): string | null => (text === undefined ? null : (hash ??= sha256(text)));
  return { state, base, replayed: replayJournal(dir, state, base, known) };
}

/** The record of `dir`: {@link loadState}'s state (without hashing the file when no journal is there). */
export function readState(dir: string, name: string, known: Known = {}): StateFile {
  return readRecord(dir, name, known).state;
}

let lastWritten = '';

/**
 * Writes the state file of `dir` whole, atomically (a new 0600 file renamed over the old one),
 * then removes its journal (compaction, journal.ts). Returns the sha256 of the bytes written.
 * Each write carries a later `updatedAt` than the one before, so two writes never have the
 * same bytes (a journal names its state file by their hash).
 * @throws {SystemError} naming the file (ENOSPC, ...): the old file and the journal are then unchanged.
 */
export function writeState(dir: string, s: StateFile): string {
  let at = new Date().toISOString();
  if (at <= lastWritten) at = new Date(Date.parse(lastWritten) + 1).toISOString();
  lastWritten = at;
  const text = `${JSON.stringify({ ...s, updatedAt: at }, null, 1)}\n`;
  writePrivateFile(stateFile(dir), text);
  try {
    removeJournal(dir);
  } catch {
    /* a journal left behind names the old file's hash: it is ignored, and replaced by the next run's */
  }
  return sha256(text);
}

/**
 * Moves the state file of `dir` aside to `state.json.corrupt-<ISO time>` (and its journal, when
 * there is one, to `state.log.corrupt-<ISO time>`); returns the new path of the state file (of
 * the journal when only it was there).
 * @throws {SystemError} naming the file.
 */
export function moveAside(dir: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  let moved = '';
  for (const file of [journalFile(dir), stateFile(dir)]) {
    if (!exists(file)) continue;
    const to = `${file}.corrupt-${stamp}`;
    try {
      renameSync(file, to);
    } catch (err) {
      throw SystemError.from(err, `moving ${file} aside`);
    }
    moved = to;
  }
  return moved;
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Whether `err` says the state file cannot be read as one (and may be rebuilt from the live system). */
export function isCorrupt(err: unknown): err is HostStateError {
  return err instanceof HostStateError && err.code === 'EHOST_STATE_CORRUPT';
}

/** The record of `id`, if any. */
export function findRecord(s: StateFile, id: string): StateRecord | undefined {
  return s.entries.find((e) => e.id === id);
}

