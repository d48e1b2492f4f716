/**
 * {@link Rtnl}: a handle on one network namespace, with links, addresses, routes, neighbours,
 * sysctls, traffic control (qdiscs, classes, filters) and change notifications.
 * @module
 */
import { closeSync } from 'node:fs';
import { newAddresses, type Addresses } from './addresses.js';
import { RtnlContext } from './context.js';
import { ValidationError } from './errors.js';
import { handleSocketOptions, openHandleNetns, type HandleOpenOptions } from './handle.js';
import { newLinks, type Links } from './links/links.js';
import { newRtnlMonitor, type RtnlMonitor, type MonitorEventsOptions } from './monitor.js';
import { newNeighbors, type Neighbors } from './neighbors.js';
import { newRoutes, type Routes } from './routes.js';
import { Sysctl } from './sysctl.js';
import { newClasses, type Classes } from './tc/classes.js';
import { newFilters, type Filters } from './tc/filters.js';
import { newQdiscs, type Qdiscs } from './tc/qdiscs.js';
import { NETLINK_ROUTE } from './transport/message.js';
import { NetlinkSocket } from './transport/socket.js';
import type { MonitorKind } from './types.js';

/** Which namespace {@link Rtnl.open} works in: at most one of `netns`, `path`, `pid`. Default: the caller's. */
export interface RtnlOpenOptions extends HandleOpenOptions {}

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
  /** Links: add, set, get, find, list, delete, deleteGroup. */
  readonly links: Links;
  /** Interface addresses: add, replace, delete, list. */
  readonly addresses: Addresses;
  /** Routes: add, replace, delete, list. */
  readonly routes: Routes;
  /** Neighbour and proxy entries: add, replace, delete, list. */
  readonly neighbors: Neighbors;
  /** /proc/sys/net values of this namespace: get, getInt, set. */
  readonly sysctl: Sysctl;
  /** Traffic control qdiscs (htb, tbf, ingress, pfifo, bfifo): add, replace, change, delete, list. */
  readonly qdiscs: Qdiscs;
  /** Traffic control classes (htb): add, replace, change, delete, list. */
  readonly classes: Classes;
  /** Traffic control filters (u32 with mirred actions): add, replace, delete, list. */
  readonly filters: Filters;
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
    this.qdiscs = newQdiscs(this.ctx);
    this.classes = newClasses(this.ctx);
    this.filters = newFilters(this.ctx);
  }

  /**
   * Opens a handle on the caller's namespace, or the one given by `netns`, `path` or `pid`.
   * @throws {ValidationError} bad options. {@link SystemError} the namespace cannot be opened.
   */
  static async open(options: RtnlOpenOptions = {}): Promise<Rtnl> {
    const fd = openHandleNetns(options);
    try {
      return new Rtnl(NetlinkSocket.open(handleSocketOptions(fd, NETLINK_ROUTE, options)), fd);
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

  /** {@link close} for `using h = await Rtnl.open(...)` (Node >= 20.4). */
  [Symbol.dispose](): void {
    this.close();
  }
}
