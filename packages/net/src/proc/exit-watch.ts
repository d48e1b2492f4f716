/**
 * Waiting for a process to exit without polling: a pidfd (pidfd_open(2), Linux 5.3) polled by
 * the addon on the event loop. It works for any process of this pid namespace, not only children
 * (a service started by an earlier run, a QEMU re-parented to PID 1), it fires when the process
 * exits (a zombie counts: PID 1 may reap late), and it names that process, never a later one that
 * reuses its pid.
 * @module
 */
import { ValidationError } from '../errors.js';
import { native } from '../sys/native.js';

/** A watch of one process's exit, from {@link watchExit}. */
export interface ExitWatch {
  /** The process watched. */
  readonly pid: number;
  /** Resolves once the process has exited (also when it had exited before the watch began); never rejects. */
  readonly exited: Promise<void>;
  /** Whether it has exited (as far as this watch has seen). */
  readonly done: boolean;
  /** Stops watching: `exited` then never resolves. Idempotent. */
  close(): void;
}

/**
 * Watches process `pid` for its exit. While the watch is open it keeps the event loop alive. Check
 * right after the watch is made that `pid` is still the process meant (its /proc/PID/cmdline, for
 * instance): the pidfd names the process that had the pid at that moment.
 * @throws {ValidationError} for a pid that is not a positive integer. A `SystemError`-like error of
 *   the addon (`code` `EPERM`, `ENOSYS`, ...) when the kernel refuses a pidfd; a process that is
 *   gone (`ESRCH`) is not an error: `exited` is resolved.
 */
export function watchExit(pid: number): ExitWatch {
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid > 0x7fffffff) throw new ValidationError('pid', pid, 'expected a positive integer');
  let resolve!: () => void;
  const exited = new Promise<void>((r) => (resolve = r));
  let done = false;
  let handle: object | undefined;
  const finish = (): void => {
    if (done) return;
    done = true;
    handle = undefined;
    resolve();
  };
  try {
    handle = native().pidWatch(pid, finish);
  } catch (err) {
    if (!(err instanceof Error && 'code' in err && err.code === 'ESRCH')) throw err;
    finish();
  }
  return {
    pid,
    exited,
    get done() {
      return done;
    },
    close() {
      if (handle !== undefined) native().pidWatchClose(handle);
      handle = undefined;
    },
  };
}
