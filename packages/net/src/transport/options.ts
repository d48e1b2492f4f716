/**
 * Option checks shared by {@link NetlinkSocket} and {@link NetlinkMonitor}. Internal.
 * @module
 */
import { ValidationError } from '../errors.js';

/** An integer in [min, max], or a ValidationError naming `field`. */
export function checkInt(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ValidationError(field, v, `expected an integer ${min}..${max}`);
  }
  return v;
}

/** The options both kinds of socket take. */
export function validateCommon(options: { protocol?: number; rcvbuf?: number }): void {
  if (options === null || typeof options !== 'object') throw new ValidationError('options', options, 'expected an object');
  if (options.protocol !== undefined) checkInt('protocol', options.protocol, 0, 31);
  if (options.rcvbuf !== undefined) checkInt('rcvbuf', options.rcvbuf, 4096, 2 ** 31 - 1);
}

