/**
 * The journal of the state file (`<stateDir>/state.log`): what a run of apply or down records,
 * step by step, appended, so that recording a step costs the size of its record, not the size of
 * the host (a state file of a 1,000-VM host is megabytes; it was rewritten twice per step).
 *
 * The journal belongs to one version of `state.json`: its first line names the sha256 of that
 * file's bytes (`{"journal":1,"base":"<hex>"}`, `null` when there is none). Each further line is
 * one change of the record: `{"op":"put","record":{...}}` (with `"at": n` to put a record back at
 * its old place) or `{"op":"drop","id":"..."}`, each parsed as strictly as the state file's
 * entries. Reading the record = reading `state.json` and replaying its journal.
 *
 * Each line is one `write(2)` to a file opened with `O_APPEND` before the step touches the system,
 * as the whole file was written before: the write-ahead order holds against the death of the
 * process (the page cache keeps it; not fsync'd, see docs/host-state.md). A line the process was
 * killed in the middle of (no newline yet) stands for a change that was never made: it is ignored
 * (the intent of a step that had not started, or the confirmation of one whose intent stays and
 * is reconciled). A failed append (ENOSPC) is cut off again (ftruncate) and fails the step.
 *
 * Compaction ({@link writeState} of state.ts) writes `state.json` whole (a new file renamed over
 * it), then removes the journal; killed between the two, the journal names the old file's hash
 * and is ignored. apply and down compact when they start (after replaying), when the journal
 * passes {@link COMPACT_BYTES}, and when they end; so between runs there is only `state.json`.
 * @module
 */
import { closeSync, constants, fchmodSync, ftruncateSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SystemError } from '@vmhost/net';
import { HostStateError } from '../errors.js';
import { parseRecordOf, type Known, type StateFile, type StateRecord } from './records.js';
import { readPrivateFile } from './state-dir.js';

const { O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_WRONLY } = constants;

/** The journal of the state directory `dir`. */
export const journalFile = (dir: string): string => join(dir, 'state.log');

/** A journal that has grown this big is compacted into the state file (between two steps). */
export const COMPACT_BYTES = 4 * 1024 * 1024;

/** A journal larger than this is refused as corrupt (compaction keeps it under COMPACT_BYTES plus a step's two records). */
export const MAX_JOURNAL_BYTES = 16 * 1024 * 1024;

/** Puts `r` in place of the record of its id, or at `at` (default: the end) when there is none. */
export function putRecord(s: StateFile, r: StateRecord, at?: number): void {
  const i = findIndex(s, r.id);
  if (i >= 0) s.entries[i] = r;
  else if (at !== undefined && at >= 0 && at <= s.entries.length) s.entries.splice(at, 0, r);
  else s.entries.push(r);
}

/** Removes the record of `id`; returns its index (-1 when there was none). */
export function dropRecord(s: StateFile, id: string): number {
  const i = findIndex(s, id);
  if (i >= 0) s.entries.splice(i, 1);
  return i;
}

/** The index of the record of `id` (searched from the end: down and undo take the newest first). */
function findIndex(s: StateFile, id: string): number {
  for (let i = s.entries.length - 1; i >= 0; i--) if (s.entries[i]!.id === id) return i;
  return -1;
}

type Op = { op: 'put'; record: StateRecord; at?: number } | { op: 'drop'; id: string };

function opLine(op: Op): string {
  return `${JSON.stringify(op)}\n`;
}

/** Applies one change to `s`. */
function applyOp(s: StateFile, op: Op): void {
  if (op.op === 'put') putRecord(s, op.record, op.at);
  else dropRecord(s, op.id);
}

/**
 * Replays the journal of `dir` onto `state`, the state file as read, whose bytes hash to what
 * `base` returns (null: there is no state file; asked only when there is a journal). A journal of
 * another base (left by a compaction that was killed before it removed it) is ignored. Returns whether a journal was replayed. `known`: see
 * records.ts {@link Known}.
 * @throws {HostStateError} naming the journal: `EHOST_STATE_CORRUPT` for a line that is not a
 *   change of the record, `EHOST_STATE_UNSAFE` for a journal that is a symlink or not ours.
 */
export function replayJournal(dir: string, state: StateFile, base: () => string | null, known: Known = {}): boolean {
  const file = journalFile(dir);
  const text = readPrivateFile(file, MAX_JOURNAL_BYTES);
  if (text === undefined) return false;
  const lines = text.split('\n');
  lines.pop(); // '' after the last newline, or a line the process was killed while writing
  if (lines.length === 0) return false;
  const bad = (n: number, why: string): HostStateError => new HostStateError(file, `not a vmhost state journal: line ${n}: ${why}`);
  const json = (line: string, n: number): Record<string, unknown> => {
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw bad(n, 'not JSON');
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(n, 'expected an object');
    return v as Record<string, unknown>;
  };
  const keys = (o: Record<string, unknown>, n: number, required: string[], optional: string[] = []): void => {
    for (const k of Object.keys(o)) if (!required.includes(k) && !optional.includes(k)) throw bad(n, `unknown field ${JSON.stringify(k)}`);
    for (const k of required) if (!(k in o)) throw bad(n, `missing field ${JSON.stringify(k)}`);
  };
  const head = json(lines[0]!, 1);
  keys(head, 1, ['journal', 'base']);
  if (head.journal !== 1) throw bad(1, 'expected journal 1');
  if (head.base !== null && (typeof head.base !== 'string' || !/^[0-9a-f]{64}$/.test(head.base))) throw bad(1, 'base: expected a sha256 in hex or null');
  if (head.base !== base()) return false;
  for (let i = 1; i < lines.length; i++) {
    const n = i + 1;
    const o = json(lines[i]!, n);
    if (o.op === 'put') {
      keys(o, n, ['op', 'record'], ['at']);
      if (o.at !== undefined && (!Number.isInteger(o.at) || (o.at as number) < 0)) throw bad(n, 'at: expected a position');
      const record = parseRecordOf(o.record, `line ${n}: record`, file, dir, known);
      applyOp(state, o.at === undefined ? { op: 'put', record } : { op: 'put', record, at: o.at as number });
    } else if (o.op === 'drop') {
      keys(o, n, ['op', 'id']);
      if (typeof o.id !== 'string' || o.id.length > 300) throw bad(n, 'id: expected a record id');
      applyOp(state, { op: 'drop', id: o.id });
    } else throw bad(n, 'op: expected "put" or "drop"');
  }
  return true;
}

/** Removes the journal of `dir` (after a compaction; a missing one is fine). */
export function removeJournal(dir: string): void {
  try {
    rmSync(journalFile(dir), { force: true });
  } catch (err) {
    throw SystemError.from(err, `removing ${journalFile(dir)}`);
  }
}

/**
 * The record of a run of apply or down: the state (in memory) and its journal. `put` and `drop`
 * change the state and append the change before they return; when the append fails, the state
 * is as before and the error (naming the journal) is thrown.
 */
export class Journal {
  private fd: number | undefined;
  private size = 0;
  private broken = false;
  /** The ids recorded (a new record is appended without a search). */
  private readonly ids: Set<string>;

  /**
   * @param state The state as read (and compacted) by this run.
   * @param base The sha256 of the state file's bytes (null: none); see {@link writeState}.
   * @param compactTo Writes the state file whole and removes the journal; returns the new base.
   */
  constructor(
    private readonly dir: string,
    readonly state: StateFile,
    private base: string | null,
    private readonly compactTo: (state: StateFile) => string,
  ) {
    this.ids = new Set(state.entries.map((e) => e.id));
  }

  /** Puts `r` in place of the record of its id (or at `at`), recorded. */
  put(r: StateRecord, at?: number): void {
    const i = this.ids.has(r.id) ? findIndex(this.state, r.id) : -1;
    const before = i >= 0 ? this.state.entries[i] : undefined;
    if (before) this.state.entries[i] = r;
    else if (at !== undefined && at >= 0 && at <= this.state.entries.length) this.state.entries.splice(at, 0, r);
    else this.state.entries.push(r);
    this.ids.add(r.id);
    try {
      this.append(at === undefined ? { op: 'put', record: r } : { op: 'put', record: r, at });
    } catch (err) {
      if (before) this.state.entries[i] = before;
      else {
        dropRecord(this.state, r.id);
        this.ids.delete(r.id);
      }
      throw err;
    }
  }

  /** Drops the record of `id`, recorded; returns its index (-1: there was none, nothing is written). */
  drop(id: string): number {
    const i = this.ids.has(id) ? findIndex(this.state, id) : -1;
    if (i < 0) return -1;
    const [before] = this.state.entries.splice(i, 1);
    this.ids.delete(id);
    try {
      this.append({ op: 'drop', id });
    } catch (err) {
      this.state.entries.splice(i, 0, before!);
      this.ids.add(id);
      throw err;
    }
    return i;
  }

  private append(op: Op): void {
    const file = journalFile(this.dir);
    // a torn line that could not be cut off: the state file is written whole first (it holds
    // every change so far, the journal then starts again)
    if (this.broken) {
      this.compact();
      this.broken = false;
    }
    let line = opLine(op);
    if (this.fd === undefined) {
      try {
        // a journal of another base (a compaction killed before it removed it) is replaced
        rmSync(file, { force: true });
        this.fd = openSync(file, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
        fchmodSync(this.fd, 0o600);
      } catch (err) {
        this.closeFd();
        throw SystemError.from(err, `writing ${file}`);
      }
      this.size = 0;
      line = `${JSON.stringify({ journal: 1, base: this.base })}\n${line}`;
    }
    const buf = Buffer.from(line);
    try {
      for (let off = 0; off < buf.length; ) off += writeSync(this.fd, buf, off);
      this.size += buf.length;
    } catch (err) {
      try {
        ftruncateSync(this.fd, this.size);
      } catch {
        this.broken = true;
      }
      throw SystemError.from(err, `writing ${file}`);
    }
    if (this.size >= COMPACT_BYTES) this.compact();
  }

  /**
   * Writes the state file whole and removes the journal (see the module); nothing when the
   * journal has no changes.
   * @throws {SystemError} when the state file cannot be written: the journal then stays, and
   *   still holds every change (reading the record replays it).
   */
  compact(): void {
    if (this.fd === undefined && !this.broken) return;
    this.base = this.compactTo(this.state);
    this.closeFd();
  }

  /** Closes the journal's file (its content stays). */
  close(): void {
    this.closeFd();
  }

  private closeFd(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch {
      /* closing a file we wrote: nothing to do about a failure */
    }
    this.fd = undefined;
  }
}
