/**
 * {@link Rtnl}: a handle on one network namespace, with links, addresses, routes, neighbours,
 * sysctls and change notifications.
 * @module
 */
import { closeSync, openSync } from 'node:fs';
import { newAddresses, type Addresses } from './addresses.js';
import { RtnlContext } from './context.js';
import { SystemError, ValidationError } from './errors.js';
import { newLinks, type Links } from './links/links.js';
import { newRtnlMonitor, type RtnlMonitor, type MonitorEventsOptions } from './monitor.js';
import { newNeighbors, type Neighbors } from './neighbors.js';
import { openNetns, type NetnsRef } from './netns.js';
import { newRoutes, type Routes } from './routes.js';
import { Sysctl } from './sysctl.js';
import { NetlinkSocket } from './transport/socket.js';
import type { MonitorKind } from './types.js';

/** Which namespace {@link Rtnl.open} works in: at most one of `netns`, `path`, `pid`. Default: the caller's. */
export interface RtnlOpenOptions {
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
 * A handle on one network namespace. Keeps an fd of the namespace from open time, so that
 * netlink requests, sysctls and TAP creation all act there, even if the name goes away.
 * Handles on different namespaces live side by side in one process; requests on one handle may
 * run concurrently (many in flight, dumps included).
 *
 * ```ts
 * const h = await Rtnl.open({ netns: 'lab' });
 * await h.links.add({ kind: 'bridge', name: 'br0' });
 * h.close();
 * ```
 */
export class Rtnl {
  /** Links: add, set, get, find, list, delete. */
  readonly links: Links;
  /** Interface addresses: add, replace, delete, list. */
  readonly addresses: Addresses;
  /** Routes: add, replace, delete, list. */
  readonly routes: Routes;
  /** Neighbour and proxy entries: add, replace, delete, list. */
  readonly neighbors: Neighbors;
  /** /proc/sys/net values of this namespace: get, getInt, set. */
  readonly sysctl: Sysctl;
  private readonly ctx: RtnlContext;
  private readonly nsFd: number;
  private readonly monitors = new Set<RtnlMonitor>();
  private closed = false;

  private constructor(sock: NetlinkSocket, nsFd: number) {
    this.nsFd = nsFd;
    this.ctx = new RtnlContext(sock, `/proc/self/fd/${nsFd}`, nsFd);
    this.links = newLinks(this.ctx);
    this.addresses = newAddresses(this.ctx);
    this.routes = newRoutes(this.ctx);
    this.neighbors = newNeighbors(this.ctx);
    this.sysctl = new Sysctl(this.ctx.nsPath);
  }

  /**
   * Opens a handle on the caller's namespace, or the one given by `netns`, `path` or `pid`.
   * @throws {ValidationError} bad options. {@link SystemError} the namespace cannot be opened.
   */
  static async open(options: RtnlOpenOptions = {}): Promise<Rtnl> {
    if (options === null || typeof options !== 'object') throw new ValidationError('options', options, 'expected an object');
    const given = (['netns', 'path', 'pid'] as const).filter((k) => options[k] !== undefined);
    if (given.length > 1) throw new ValidationError(given[1]!, options[given[1]!], `give only one of netns, path, pid (got ${given.join(', ')})`);
    let fd: number;
    if (options.netns !== undefined) fd = openNetns(options.netns, 'netns');
    else if (options.path !== undefined) fd = openNetns({ path: options.path }, 'path');
    else if (options.pid !== undefined) fd = openNetns({ pid: options.pid }, 'pid');
    else {
      try {
        fd = openSync('/proc/thread-self/ns/net', 'r');
      } catch (err) {
        throw SystemError.from(err, 'opening the current network namespace');
      }
    }
    try {
      const sockOpts: { netns: { path: string }; timeoutMs?: number } = { netns: { path: `/proc/self/fd/${fd}` } };
      if (options.timeoutMs !== undefined) sockOpts.timeoutMs = options.timeoutMs;
      return new Rtnl(NetlinkSocket.open(sockOpts), fd);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /**
   * Change notifications of this namespace as typed events, subscribed from now on:
   * `for await (const ev of h.monitor(['link', 'address'])) ...`. An `{ type: 'overrun' }` event
   * means notifications were lost: re-read the state you track.
   */
  monitor(kinds: MonitorKind[], options: MonitorEventsOptions = {}): RtnlMonitor {
    if (this.closed) throw new ValidationError('handle', 'closed', 'the handle is closed');
    const m = newRtnlMonitor(this.ctx, kinds, options, (x) => this.monitors.delete(x));
    this.monitors.add(m);
    return m;
  }

  /** A path naming this handle's namespace while it is open (`/proc/self/fd/N`), usable as `{ path }`. */
  get netnsPath(): string {
    return this.ctx.nsPath;
  }

  /** Whether {@link close} was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Closes the handle: pending requests reject with NetlinkClosedError, monitors end. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const m of [...this.monitors]) m.close();
    this.ctx.close();
    closeSync(this.nsFd);
  }
}
