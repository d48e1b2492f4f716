/**
 * Owner records: which process owns something (a network namespace of a lab, a lock), kept as the
 * text `PID STARTTIME` so that the owner counts as alive only while that very process runs (a
 * reused pid has another start time). Used by the lab kit's namespace records.
 * @module
 */
import { isLiveState, procStat } from './stat.js';

/** A process, identified across pid reuse. */
export interface ProcessOwner {
  pid: number;
  /** Its start time (/proc/PID/stat field 22); undefined in old records that held the pid only. */
  startTime: number | undefined;
}

let self: ProcessOwner | undefined;

/** This process as an owner. */
export function selfOwner(): ProcessOwner {
  self ??= { pid: process.pid, startTime: procStat(process.pid)?.startTime };
  return self;
}

/** The text of an owner record: `PID STARTTIME\n` (`PID\n` without a start time). */
export function formatOwnerRecord(owner: ProcessOwner = selfOwner()): string {
  return owner.startTime === undefined ? `${owner.pid}\n` : `${owner.pid} ${owner.startTime}\n`;
}

/** Parses an owner record's text; undefined when it holds no pid. */
export function parseOwnerRecord(text: string): ProcessOwner | undefined {
  const [pidText, startText] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  const start = startText === undefined ? undefined : Number(startText);
  return { pid, startTime: start !== undefined && Number.isSafeInteger(start) ? start : undefined };
}

/**
 * Whether the owner still runs: its pid is a live process with the recorded start time (any
 * live process of that pid when the record has no start time).
 */
export function isOwnerAlive(owner: ProcessOwner | undefined): boolean {
  if (owner === undefined) return false;
  const st = procStat(owner.pid);
  if (st === undefined || !isLiveState(st.state)) return false;
  return owner.startTime === undefined || owner.startTime === st.startTime;
}
