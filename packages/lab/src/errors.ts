/**
 * Errors of @vmhost/lab. Bad declarations are @vmhost/net's `ValidationError` (nothing made).
 * @module
 */
import { VmhostError } from '@vmhost/net';

/**
 * Building a lab failed at a step (after validation): everything made so far was removed
 * (rollback) before this was thrown. `cause` is the original error.
 */
export class LabSetupError extends VmhostError {
  /** The step that failed, e.g. `link internet:up0 <-> host:eth0`. */
  readonly step: string;
  /** Errors met while rolling back (empty when the rollback was clean). */
  readonly rollbackErrors: unknown[];
  constructor(step: string, cause: unknown, rollbackErrors: unknown[] = []) {
    super('ELAB_SETUP', `lab: ${step}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.step = step;
    this.rollbackErrors = rollbackErrors;
  }
}

/** {@link Lab.close} (or removing a namespace) could not do everything; it still tried every step. */
export class LabCloseError extends VmhostError {
  /** What failed, in order. */
  readonly errors: unknown[];
  constructor(errors: unknown[]) {
    super('ELAB_CLOSE', `lab close: ${errors.length} step(s) failed: ${errors.map((e) => (e instanceof Error ? e.message : String(e))).join('; ')}`);
    this.errors = errors;
  }
}

/** A lab (or a namespace of the kit) was used after it was closed or removed. */
export class LabClosedError extends VmhostError {
  constructor(what = 'the lab') {
    super('ELAB_CLOSED', `${what} is closed`);
  }
}

/** A program run by `Lab.exec` exited non-zero; the message holds its stderr. */
export class LabCommandError extends VmhostError {
  /** Its exit code, or null when a signal ended it. */
  readonly exitCode: number | null;
  /** The signal that ended it, if any. */
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  constructor(what: string, r: { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }) {
    super('ELAB_COMMAND', `${what} exited ${String(r.code ?? r.signal)}: ${r.stderr.trim()}`);
    this.exitCode = r.code;
    this.signal = r.signal;
    this.stdout = r.stdout;
    this.stderr = r.stderr;
  }
}
