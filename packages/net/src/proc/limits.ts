/**
 * The open-file limit (RLIMIT_NOFILE) of this process: read it, set it, raise it. Node has no
 * setrlimit; the native addon wraps getrlimit/setrlimit. A service that holds many sockets (the
 * IPv6 proxy of @vmhost/host) raises its soft limit at start instead of inheriting the usual 1024.
 * @module
 */
import { ValidationError, SystemError } from '../errors.js';
import { native } from '../sys/native.js';

/** An RLIMIT_NOFILE pair; `Infinity` stands for RLIM_INFINITY. */
export interface NoFileLimit {
  /** The limit in force: open() and accept() fail with EMFILE at this many descriptors. */
  soft: number;
  /** The ceiling the soft limit may be raised to without privilege. */
  hard: number;
}

/** The open-file limit of this process (getrlimit(RLIMIT_NOFILE)). */
export function noFileLimit(): NoFileLimit {
  try {
    return native().noFileLimit();
  } catch (err) {
    throw SystemError.from(err, 'reading the open-file limit');
  }
}

function validateLimit(v: unknown, field: string): asserts v is number {
  if (typeof v !== 'number' || !(v === Infinity || (Number.isSafeInteger(v) && v >= 0))) {
    throw new ValidationError(field, v, 'expected a whole number >= 0 or Infinity');
  }
}

/**
 * Sets the open-file limit of this process (setrlimit(RLIMIT_NOFILE)). Children spawned
 * afterwards inherit it. Lowering is always allowed; raising `hard` needs CAP_SYS_RESOURCE (root)
 * and stops at the kernel's `fs.nr_open`.
 * @throws {ValidationError} for a `soft` above `hard` or a value that is not a whole number >= 0.
 * @throws {SystemError} `EPERM` (raising `hard` without privilege, or beyond fs.nr_open), `EINVAL`.
 */
export function setNoFileLimit(limit: NoFileLimit): void {
  if (!limit || typeof limit !== 'object') throw new ValidationError('limit', limit, 'expected { soft, hard }');
  validateLimit(limit.soft, 'limit.soft');
  validateLimit(limit.hard, 'limit.hard');
  if (limit.soft > limit.hard) throw new ValidationError('limit.soft', limit.soft, `above the hard limit ${limit.hard}`);
  try {
    native().setNoFileLimit(limit.soft, limit.hard);
  } catch (err) {
    throw SystemError.from(err, `setting the open-file limit to ${limit.soft}/${limit.hard}`);
  }
}

/**
 * Raises the soft open-file limit to at least `wanted` where it can, and never lowers anything:
 * up to the hard limit always; beyond it only with privilege (CAP_SYS_RESOURCE), when the hard
 * limit is raised to `wanted` too (capped by `fs.nr_open`). Returns the limit now in force,
 * which is below `wanted` when the hard limit could not be raised: the caller decides what a
 * smaller budget means (the IPv6 proxy lowers its connection cap to fit).
 * @throws {ValidationError} when `wanted` is not a positive whole number.
 */
export function raiseNoFileLimit(wanted: number): NoFileLimit {
  if (!Number.isSafeInteger(wanted) || wanted < 1) throw new ValidationError('wanted', wanted, 'expected a positive whole number');
  const now = noFileLimit();
  if (now.soft >= wanted) return now;
  if (wanted > now.hard) {
    try {
      setNoFileLimit({ soft: wanted, hard: wanted });
      return noFileLimit();
    } catch {
      // no privilege, or above fs.nr_open: the hard limit is as far as we go
    }
  }
  setNoFileLimit({ soft: Math.min(wanted, now.hard), hard: now.hard });
  return noFileLimit();
}
