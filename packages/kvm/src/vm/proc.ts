/**
 * Facts about processes from /proc. The general ones (`procStat`, `isAlive`, `cmdline`,
 * `readPidfile`, ...) live in @vmhost/net's process module and are re-exported here; this module
 * adds what is QEMU's own.
 * @module
 */
import { cmdline, isAlive } from '@vmhost/net';

export { cmdline, groupMembers, isAlive, procStat, procState, readPidfile, type ProcStat } from '@vmhost/net';

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
