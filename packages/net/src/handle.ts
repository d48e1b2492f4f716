/**
 * What the per-namespace handles ({@link Rtnl}, {@link Netfilter}) share: which namespace they are
 * opened in, and opening it once as an fd the handle keeps. Internal.
 * @module
 */
import { openSync } from 'node:fs';
import { SystemError, ValidationError } from './errors.js';
import { openNetns, type NetnsRef } from './netns.js';

/** Which namespace a handle works in: at most one of `netns`, `path`, `pid`. Default: the caller's. */
export interface HandleOpenOptions {
  /** A named namespace (/run/netns/NAME), or any {@link NetnsRef}. */
  netns?: NetnsRef;
  /** An nsfs file, e.g. /proc/1234/ns/net or a bind mount. */
  path?: string;
  /** The namespace of this process. */
  pid?: number;
  /** Default timeout of every request in ms (none by default). */
  timeoutMs?: number;
}

/**
 * Validates `options` and opens the namespace they name (the caller's by default) as an fd, which
 * the handle keeps so that it acts on the same namespace even if the name goes away.
 * @throws {ValidationError} bad options. {@link SystemError} the namespace cannot be opened.
 */
export function openHandleNetns(options: HandleOpenOptions): number {
  if (options === null || typeof options !== 'object') throw new ValidationError('options', options, 'expected an object');
  const given = (['netns', 'path', 'pid'] as const).filter((k) => options[k] !== undefined);
  if (given.length > 1) throw new ValidationError(given[1]!, options[given[1]!], `give only one of netns, path, pid (got ${given.join(', ')})`);
  if (options.netns !== undefined) return openNetns(options.netns, 'netns');
  if (options.path !== undefined) return openNetns({ path: options.path }, 'path');
  if (options.pid !== undefined) return openNetns({ pid: options.pid }, 'pid');
  try {
    return openSync('/proc/thread-self/ns/net', 'r');
  } catch (err) {
    throw SystemError.from(err, 'opening the current network namespace');
  }
}

/** The socket options of a handle on the namespace fd `nsFd`, with `protocol`. */
export function handleSocketOptions(nsFd: number, protocol: number, options: HandleOpenOptions): { netns: { path: string }; protocol: number; timeoutMs?: number } {
  const o: { netns: { path: string }; protocol: number; timeoutMs?: number } = { netns: { path: `/proc/self/fd/${nsFd}` }, protocol };
  if (options.timeoutMs !== undefined) o.timeoutMs = options.timeoutMs;
  return o;
}
