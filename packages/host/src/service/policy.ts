/**
 * The restart policy of `vmhost run`, pure (a clock is passed in): how a VM's exit is told from
 * what its QMP event socket said before it ended ({@link classifyExit}), and whether and when it
 * starts again ({@link Restarts}): `always`, `on-failure` (a crash, kill -9 or guest panic; not a
 * poweroff the guest asked for, nor a stop from the host), `never`; the first restart at once, then
 * an exponential backoff; so many restarts within the window and a failure more is a crash loop,
 * given up. dnsmasq and the IPv6 proxy are always restarted, with the same backoff, never given up.
 * @module
 */
import type { RestartPolicy } from '../types.js';
import type { ExitCause, ServiceTuning } from './types.js';

/** What the event socket of a VM said before its QEMU exited. */
export interface ExitEvidence {
  /** Whether an event socket was connected (else only the pid was watched). */
  qmp: boolean;
  /** The SHUTDOWN event's data, if one came. */
  shutdown?: { guest: boolean; reason: string };
  /** A GUEST_PANICKED event came. */
  panicked: boolean;
  /** `vmhost vm stop` named this QEMU in the run directory's `stopped` file. */
  stoppedByVmStop: boolean;
}

/** How a VM's QEMU ended (see {@link ExitCause}). */
export function classifyExit(e: ExitEvidence): ExitCause {
  if (e.stoppedByVmStop) return 'stopped';
  if (e.panicked || e.shutdown?.reason === 'guest-panic') return 'panic';
  if (e.shutdown) {
    if (e.shutdown.reason === 'host-error') return 'crash';
    if (e.shutdown.reason.startsWith('host-')) return 'host';
    return 'poweroff';
  }
  return e.qmp ? 'crash' : 'unknown';
}

/** Whether an exit is a failure (what `on-failure` restarts after). */
export function isFailure(cause: ExitCause): boolean {
  return cause === 'crash' || cause === 'panic' || cause === 'unknown';
}

/** What {@link Restarts.decide} says. */
export type Decision =
  | { action: 'restart'; delayMs: number; attempt: number }
  | { action: 'leave'; why: string }
  | { action: 'give-up'; restarts: number };

/** The words for why a VM is left down after `cause`. */
export function exitText(cause: ExitCause): string {
  switch (cause) {
    case 'poweroff':
      return 'the guest powered off';
    case 'host':
      return 'stopped from the host (QMP quit or a signal to QEMU)';
    case 'stopped':
      return 'stopped by vmhost vm stop';
    case 'panic':
      return 'the guest panicked';
    case 'crash':
      return 'QEMU died without a shutdown (killed or crashed)';
    case 'unknown':
      return 'QEMU exited (watched by pid only: how is not known)';
  }
}

/** The restarts of one VM or service, and the decisions on its exits. */
export class Restarts {
  /** When each restart within the window was made (ms, the clock's). */
  private times: number[] = [];
  /** Restarts since the service started (for status and metrics). */
  total = 0;
  /** Given up (a crash loop) until {@link reset}. */
  gaveUp = false;

  constructor(
    private readonly tuning: Pick<ServiceTuning, 'backoffMs' | 'backoffMaxMs' | 'crashLoopCount' | 'crashLoopWindowMs'>,
    /** `undefined` for a service: always restarted, never given up. */
    private readonly policy: RestartPolicy | undefined,
  ) {}

  /** Restarts within the window at `now`. */
  recent(now: number): number {
    this.times = this.times.filter((t) => now - t < this.tuning.crashLoopWindowMs);
    return this.times.length;
  }

  /** The delay before the next restart at `now`: none for the first in the window, then doubling. */
  delay(now: number): number {
    const n = this.recent(now);
    return n === 0 ? 0 : Math.min(this.tuning.backoffMs * 2 ** (n - 1), this.tuning.backoffMaxMs);
  }

  /** Whether and when to start again after an exit (`cause`) at `now`. */
  decide(cause: ExitCause, now: number, policy: RestartPolicy | undefined = this.policy): Decision {
    if (cause === 'stopped') return { action: 'leave', why: exitText(cause) };
    if (policy === 'never') return { action: 'leave', why: `${exitText(cause)}; restart: never` };
    if (policy === 'on-failure' && !isFailure(cause)) return { action: 'leave', why: `${exitText(cause)}; restart: on-failure` };
    const n = this.recent(now);
    if (policy !== undefined && n >= this.tuning.crashLoopCount) {
      this.gaveUp = true;
      return { action: 'give-up', restarts: n };
    }
    return { action: 'restart', delayMs: this.delay(now), attempt: n + 1 };
  }

  /** Records a restart (made or attempted) at `now`. */
  record(now: number): void {
    this.times.push(now);
    this.total++;
  }

  /** Forgets the window and a give-up (a reload, or the VM was started by hand). */
  reset(): void {
    this.times = [];
    this.gaveUp = false;
  }
}
