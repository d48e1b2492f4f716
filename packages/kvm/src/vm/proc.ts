/**
 * Facts about processes from /proc: whether a pid is alive (a zombie is not: PID 1 here reaps
 * late, so `kill(pid, 0)` would call a dead QEMU alive) and what its command line is.
 * @module
 */
import { readFileSync } from 'node:fs';

/** The state letter of /proc/PID/stat (R, S, D, Z, T, ...), or undefined when there is no such process. */
export function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) || undefined;
  } catch {
    return undefined;
  }
}

/** Whether `pid` is a live process (exists and is neither a zombie nor dead). */
export function isAlive(pid: number): boolean {
  const s = procState(pid);
  return s !== undefined && s !== 'Z' && s !== 'X' && s !== 'x';
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
