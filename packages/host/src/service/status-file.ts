/**
 * The status file of `vmhost run`: `<stateDir>/service.json`, replaced atomically (a new 0600 file
 * renamed over the old one, never through a symlink: state-dir.ts) whenever something changes,
 * never on a timer. `vmhost status` reads it when it is there and says whether the service runs:
 * the pid it names is alive and has the start time recorded (a reused pid does not count). It is
 * data for display only: read strictly (its shape checked), never acted on.
 * @module
 */
import { join } from 'node:path';
import { isAlive, procStat } from '@vmhost/net';
import { readPrivateFile, writePrivateFile } from '../engine/state-dir.js';
import type { ServiceStatusFile } from './types.js';

/** The status file's name in the state directory. */
export const STATUS_FILE = 'service.json';

/** The largest status file read. */
const MAX_BYTES = 1024 * 1024;

/** Writes `s` to the state directory `dir` (atomically, 0600). @throws {SystemError} (ENOSPC, ...) */
export function writeServiceStatus(dir: string, s: ServiceStatusFile): void {
  writePrivateFile(join(dir, STATUS_FILE), `${JSON.stringify(s, null, 2)}\n`);
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether `v` has the shape of a status file (the fields `status` shows). */
function isStatusFile(v: unknown): v is ServiceStatusFile {
  if (!isObj(v) || v.version !== 1) return false;
  if (!Number.isSafeInteger(v.pid) || !Number.isSafeInteger(v.startTime) || typeof v.host !== 'string' || typeof v.since !== 'string' || typeof v.updatedAt !== 'string') return false;
  if (!['starting', 'running', 'stopping', 'stopped'].includes(v.state as string)) return false;
  if (!isObj(v.vms) || !isObj(v.services) || !isObj(v.repairs) || !isObj(v.repairs.byKind) || !Array.isArray(v.repairs.last)) return false;
  return Object.values(v.vms).every((m) => isObj(m) && typeof m.running === 'boolean' && Number.isSafeInteger(m.restarts) && typeof m.crashLoop === 'boolean');
}

/** What {@link readServiceStatus} finds. */
export interface ServiceStatusView {
  /** Whether the process the file names runs (same pid, same start time) and has not stopped. */
  running: boolean;
  /** The file's contents. */
  status: ServiceStatusFile;
}

/**
 * The status file of the state directory `dir`, and whether its service runs; undefined when there
 * is none, or it is not a status file (it is then ignored, as a display would).
 * @throws {HostStateError} `EHOST_STATE_UNSAFE` for a symlink or a file others can write.
 */
export function readServiceStatus(dir: string): ServiceStatusView | undefined {
  const text = readPrivateFile(join(dir, STATUS_FILE), MAX_BYTES);
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isStatusFile(v)) return undefined;
  const running = v.state !== 'stopped' && isAlive(v.pid) && procStat(v.pid)?.startTime === v.startTime;
  return { running, status: v };
}
