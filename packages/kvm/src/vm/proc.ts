/**
 * Facts about processes from /proc: whether a pid is alive (a zombie is not: PID 1 here reaps
 * late, so `kill(pid, 0)` would call a dead QEMU alive) and what its command line is.
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
}

/** State, parent and process group of `pid` from /proc/PID/stat, or undefined when there is no such process. */
export function procStat(pid: number): ProcStat | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: the fields start after the last ')'
    const [state, ppid, pgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ', 3);
    if (!state) return undefined;
    return { state, ppid: Number(ppid), pgid: Number(pgid) };
  } catch {
    return undefined;
  }
}

/** The state letter of /proc/PID/stat (R, S, D, Z, T, ...), or undefined when there is no such process. */
export function procState(pid: number): string | undefined {
  return procStat(pid)?.state;
}

/** Whether `pid` is a live process (exists and is neither a zombie nor dead). */
export function isAlive(pid: number): boolean {
  return live(procStat(pid)?.state);
}

/** Whether a state letter is that of a live process (not a zombie, not dead). */
function live(s: string | undefined): boolean {
  return s !== undefined && s !== 'Z' && s !== 'X' && s !== 'x';
}

/** The live processes whose process group is `pgid`, sorted (a scan of /proc). */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = procStat(Number(e));
    if (st && st.pgid === pgid && live(st.state)) out.push(Number(e));
  }
  return out.sort((a, b) => a - b);
}

/** argv of `pid`, or undefined. */
export function cmdline(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!raw) return undefined;
    return raw.replace(/\0$/, '').split('\0');
  } catch {
    return undefined;
  }
}

/** Whether `pid` is a live QEMU system emulator whose command line names `qmpSocket`. */
export function isQemuServing(pid: number, qmpSocket: string): boolean {
  if (!isAlive(pid)) return false;
  const argv = cmdline(pid);
  if (!argv?.length) return false;
  const exe = argv[0]!.split('/').pop() ?? '';
  if (!exe.startsWith('qemu-system-')) return false;
  const escaped = qmpSocket.replace(/,/g, ',,');
  return argv.some((a) => a.includes(`path=${escaped},`) || a.includes(`unix:${escaped},`) || a === qmpSocket);
}

/** Reads a pidfile: the pid, or undefined when missing or not a pid. */
export function readPidfile(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}
