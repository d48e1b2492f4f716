/**
 * Error classes shared by every vmhost package. Each has a machine-readable `code`.
 * @module
 */

/** Base class of vmhost's errors. */
export class VmhostError extends Error {
  /**
   * Machine-readable error code: an errno name (`'EEXIST'`) when the system refused, else vmhost's
   * own `E<AREA>_<WHAT>` (`'ENETLINK_TIMEOUT'`); `'EVALIDATION'` for bad input. See docs/errors.md.
   */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * Input rejected before anything was sent to the kernel or applied.
 * `field` names the offending field (a dotted path such as `peer.name`), `value` holds what was given.
 */
export class ValidationError extends VmhostError {
  /** Path of the bad field, e.g. `'mac'`, `'peer.name'`, `'portForwards[2].port'`. */
  readonly field: string;
  /** The rejected value, as given. */
  readonly value: unknown;
  /** Why it was rejected (the message's last part), e.g. `'expected a unicast MAC address'`. */
  readonly reason: string;
  /** @param code `EVALIDATION`, or a subclass's own code (such as `EHOST_PRECONDITION`). */
  constructor(field: string, value: unknown, reason: string, code = 'EVALIDATION') {
    super(code, `invalid ${field}: ${formatValue(value)}: ${reason}`);
    this.field = field;
    this.value = value;
    this.reason = reason;
  }
}

/** An operating-system call failed (`setns`, `mount`, `ioctl`, `open`, ...). */
export class SystemError extends VmhostError {
  /** errno number. */
  readonly errno: number;
  /** The system call that failed. */
  readonly syscall: string;
  constructor(code: string, errno: number, syscall: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.errno = errno;
    this.syscall = syscall;
  }

  /** Wraps an error thrown by Node or by the native addon (with `code`/`errno`/`syscall`). */
  static from(err: unknown, context: string): SystemError | unknown {
    const e = err as { code?: unknown; errno?: unknown; syscall?: unknown; message?: unknown };
    if (e && typeof e.code === 'string' && typeof e.errno === 'number') {
      return new SystemError(e.code, Math.abs(e.errno), String(e.syscall ?? ''), `${context}: ${String(e.message)}`, {
        cause: err,
      });
    }
    return err;
  }
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s;
  } catch {
    return String(v);
  }
}
