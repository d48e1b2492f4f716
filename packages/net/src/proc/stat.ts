/**
 * Facts about processes from /proc: state, parent, process group and start time of a pid, whether
 * it is alive (a zombie is not: PID 1 here reaps late, so `kill(pid, 0)` would call a dead
 * process alive), the members of a process group, a command line, a pidfile.
 * @module
 */
import { readdirSync, readFileSync } from 'node:fs';

/** The fields of /proc/PID/stat that supervision needs. */
export interface ProcStat {
  /** State letter: R, S, D, Z, T, ... */
  state: string;
  /** Parent pid. */
  ppid: number;
  /** Process group id. */
  pgid: number;
  /**
   * When the process started, in clock ticks after boot (field 22). With the pid it identifies a
   * process across pid reuse (see `ProcessOwner` of @vmhost/net).
   */
  startTime: number;
}

/** Whether `pid` can name a process (a positive safe integer). */
function isPid(pid: number): boolean {
  return Number.isSafeInteger(pid) && pid > 0;
}

/**
 * State, parent, process group and start time of `pid` from /proc/PID/stat, or undefined when
 * there is no such process.
 */
export function procStat(pid: number): ProcStat | undefined {
  if (!isPid(pid)) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: the fields start after the last ')'
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [state, ppid, pgid] = rest;
    if (!state) return undefined;
    return { state, ppid: Number(ppid), pgid: Number(pgid), startTime: Number(rest[19]) };
  } catch {
    return undefined;
  }
}

/** The state letter of /proc/PID/stat (R, S, D, Z, T, ...), or undefined when there is no such process. */
export function procState(pid: number): string | undefined {
  return procStat(pid)?.state;
}

/** Whether a state letter is that of a live process (not a zombie, not dead). */
export function isLiveState(state: string | undefined): boolean {
  return state !== undefined && state !== 'Z' && state !== 'X' && state !== 'x';
}

/** Whether `pid` is a live process (exists and is neither a zombie nor dead). */
export function isAlive(pid: number): boolean {
  return isLiveState(procStat(pid)?.state);
}

/** Every pid in /proc, ascending (processes, not threads). */
export function allPids(): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) if (/^\d+$/.test(e)) out.push(Number(e));
  return out.sort((a, b) => a - b);
}

/** The live processes whose process group is `pgid`, ascending (a scan of /proc). */
export function groupMembers(pgid: number): number[] {
  return allPids().filter((pid) => {
    const st = procStat(pid);
    return st !== undefined && st.pgid === pgid && isLiveState(st.state);
  });
}

/** argv of `pid` from /proc/PID/cmdline, or undefined (no such process, or a kernel thread). */
export function cmdline(pid: number): string[] | undefined {
  if (!isPid(pid)) return undefined;
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!raw) return undefined;
    return raw.replace(/\0$/, '').split('\0');
  } catch {
    return undefined;
  }
}

/** Reads a pidfile: the pid, or undefined when the file is missing or holds no pid. */
export function readPidfile(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return isPid(n) ? n : undefined;
  } catch {
    return undefined;
  }
}
