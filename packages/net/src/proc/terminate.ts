/**
 * Ending a process by its pid: {@link sendSignal} (one signal, quietly) and {@link terminate}
 * (a ladder of signals, each followed by a bounded wait, optionally to a whole process group).
 * A pid is only ever signalled while it still names the process it named at the start (same
 * start time), so a pid reused meanwhile is never hit.
 * @module
 */
import { ValidationError } from '../errors.js';
import { groupMembers, isLiveState, procStat } from './stat.js';

/** One rung of a termination ladder: send `signal`, then wait up to `waitMs` for the end. */
export interface TerminateRung {
  signal: NodeJS.Signals;
  /** How long to wait after the signal, in milliseconds (0: not at all). */
  waitMs: number;
}

/** The ladder {@link terminate} climbs when given none: SIGTERM, 5 s, SIGKILL, 5 s. */
export const DEFAULT_TERMINATE_LADDER: readonly TerminateRung[] = [
  { signal: 'SIGTERM', waitMs: 5_000 },
  { signal: 'SIGKILL', waitMs: 5_000 },
];

/** Options of {@link terminate}. */
export interface TerminateOptions {
  /**
   * Signal the whole process group of `pid` (`kill(-pid)`) and wait until every member is gone.
   * `'auto'`: only when `pid` leads its own group (a process spawned `detached` does), so that
   * what it started itself ends with it. Default false: `pid` alone.
   */
  group?: boolean | 'auto';
  /** The signals in order, each with its wait. Default {@link DEFAULT_TERMINATE_LADDER}. */
  ladder?: readonly TerminateRung[];
  /** Shorthand for a ladder of one rung: this signal, then a wait of `waitMs`. */
  signal?: NodeJS.Signals;
  /** The wait of the `signal` shorthand. Default 5000 ms. */
  waitMs?: number;
  /** How often /proc is looked at while waiting. Default 10 ms. */
  pollMs?: number;
}

/** What {@link terminate} did. */
export interface TerminateResult {
  /** Whether the process (and with `group`, every member of its group) is gone. */
  gone: boolean;
  /**
   * The signal of the rung after which it was gone; null when it was gone before the first
   * signal, or when it survived the whole ladder (`gone` false).
   */
  signal: NodeJS.Signals | null;
  /** How long it took, in milliseconds. */
  ms: number;
}

/**
 * Sends `signal` to `pid` (to its process group with `group`), ignoring a process that is gone.
 * Synchronous, so usable in a process 'exit' handler.
 * @returns false when there was no such process (or group).
 */
export function sendSignal(pid: number, signal: NodeJS.Signals, options: { group?: boolean } = {}): boolean {
  try {
    process.kill(options.group ? -pid : pid, signal);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function checkPid(pid: unknown): asserts pid is number {
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) throw new ValidationError('pid', pid, 'expected a positive integer');
  if (pid === process.pid) throw new ValidationError('pid', pid, 'is this process');
}

function ladderOf(options: TerminateOptions): readonly TerminateRung[] {
  if (options.signal !== undefined && options.ladder !== undefined) {
    throw new ValidationError('signal', options.signal, 'give either signal or ladder, not both');
  }
  const ladder = options.signal !== undefined ? [{ signal: options.signal, waitMs: options.waitMs ?? 5_000 }] : (options.ladder ?? DEFAULT_TERMINATE_LADDER);
  if (ladder.length === 0) throw new ValidationError('ladder', ladder, 'expected at least one rung');
  ladder.forEach((r, i) => {
    if (!Number.isFinite(r.waitMs) || r.waitMs < 0) throw new ValidationError(`ladder[${i}].waitMs`, r.waitMs, 'expected a number of milliseconds >= 0');
  });
  return ladder;
}

/**
 * Ends the process `pid`: sends each signal of the ladder in turn and waits (polling /proc) until
 * the process is gone or the rung's wait is over. A zombie counts as gone. The process is
 * identified by its start time when the call begins: if the pid names another process later
 * (reused), it counts as gone and is not signalled.
 *
 * With `group` (or `'auto'` when `pid` leads its group), the group is signalled and waited for
 * as a whole.
 * @throws {ValidationError} for a bad pid (also this process's own) or ladder.
 */
export async function terminate(pid: number, options: TerminateOptions = {}): Promise<TerminateResult> {
  checkPid(pid);
  const ladder = ladderOf(options);
  const pollMs = options.pollMs ?? 10;
  const t0 = performance.now();
  const done = (gone: boolean, signal: NodeJS.Signals | null): TerminateResult => ({ gone, signal, ms: performance.now() - t0 });

  const first = procStat(pid);
  const group = options.group === 'auto' ? first?.pgid === pid : options.group === true;
  /** The process of the start, still alive (a reused pid is another process). */
  const leaderAlive = (): boolean => {
    const st = procStat(pid);
    return st !== undefined && first !== undefined && st.startTime === first.startTime && isLiveState(st.state);
  };
  const alive = (): boolean => leaderAlive() || (group && groupMembers(pid).length > 0);

  if (!alive()) return done(true, null);
  for (const rung of ladder) {
    // the leader may be gone while members of its group live on: then the group is still signalled
    if (group || leaderAlive()) sendSignal(pid, rung.signal, { group });
    const until = performance.now() + rung.waitMs;
    while (alive() && performance.now() < until) await sleep(pollMs);
    if (!alive()) return done(true, rung.signal);
  }
  return done(false, null);
}
