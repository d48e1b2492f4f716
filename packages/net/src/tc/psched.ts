/**
 * The packet scheduler's clock of the running kernel, read once from /proc/net/psched (as tc
 * does), for the rate tables and tick conversions. Internal.
 * @module
 */
import { readFileSync } from 'node:fs';
import { DEFAULT_PSCHED, parsePsched, type Psched } from './rate.js';

let cached: Psched | undefined;

/** The kernel's {@link Psched}; the defaults when /proc/net/psched cannot be read or parsed. */
export function psched(): Psched {
  if (!cached) {
    let text = '';
    try {
      text = readFileSync('/proc/net/psched', 'utf8');
    } catch {
      // not mounted: the defaults hold for every kernel with high-resolution timers
    }
    cached = parsePsched(text) ?? DEFAULT_PSCHED;
  }
  return cached;
}
