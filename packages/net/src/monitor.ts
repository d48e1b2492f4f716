/**
 * Typed change notifications of a namespace: links, addresses, routes, neighbours.
 * @module
 */
import * as C from './codec/constants.js';
import { CodecError } from './codec/attrs.js';
import type { RtnlContext } from './context.js';
import { ValidationError } from './errors.js';
import { toAddress } from './addresses.js';
import { decodeLinkView, toLink } from './links/link.js';
import { toNeighbor } from './neighbors.js';
import { toRoute } from './routes.js';
import type { NetlinkMonitor } from './transport/monitor.js';
import { NetlinkSocket } from './transport/socket.js';
import type { MonitorKind, RtnlEvent } from './types.js';

const GROUPS: Record<MonitorKind, number[]> = {
  link: [C.RTNLGRP_LINK],
  address: [C.RTNLGRP_IPV4_IFADDR, C.RTNLGRP_IPV6_IFADDR],
  route: [C.RTNLGRP_IPV4_ROUTE, C.RTNLGRP_IPV6_ROUTE],
  neighbor: [C.RTNLGRP_NEIGH],
};

/** Options of {@link Rtnl.monitor}. */
export interface MonitorEventsOptions {
  /** Stops the monitor; the iteration then throws `signal.reason`. */
  signal?: AbortSignal;
}

/** Makes a handle's monitor (from {@link Rtnl.monitor}; the constructor is private). Internal. */
export let newRtnlMonitor: (ctx: RtnlContext, kinds: MonitorKind[], options: MonitorEventsOptions, onClose: (m: RtnlMonitor) => void) => RtnlMonitor;

/**
 * An async iterator of {@link RtnlEvent}s. Subscribed from the moment it is created (events
 * that happen before the first `next()` are kept). `break` in a `for await`, `return()` or
 * {@link close} stops it.
 */
export class RtnlMonitor implements AsyncIterableIterator<RtnlEvent> {
  private readonly inner: NetlinkMonitor;
  private readonly names: Promise<Map<number, string>>;
  private readonly onClose: (m: RtnlMonitor) => void;
  /** Notifications that did not decode (skipped). */
  malformed = 0;

  static {
    newRtnlMonitor = (ctx, kinds, options, onClose) => new RtnlMonitor(ctx, kinds, options, onClose);
  }

  private constructor(ctx: RtnlContext, kinds: MonitorKind[], options: MonitorEventsOptions, onClose: (m: RtnlMonitor) => void) {
    if (!Array.isArray(kinds) || kinds.length === 0) throw new ValidationError('kinds', kinds, "expected a non-empty array of 'link', 'address', 'route', 'neighbor'");
    const groups = new Set<number>();
    kinds.forEach((k, i) => {
      if (!Object.prototype.hasOwnProperty.call(GROUPS, k)) throw new ValidationError(`kinds[${i}]`, k, "expected 'link', 'address', 'route' or 'neighbor'");
      for (const g of GROUPS[k]) groups.add(g);
    });
    const opts: { netns: { path: string }; signal?: AbortSignal } = { netns: ctx.nsRef };
    if (options.signal) opts.signal = options.signal;
    this.inner = NetlinkSocket.monitor([...groups], opts);
    this.onClose = onClose;
    // Names of the links as they are now; kept current from link events.
    this.names = ctx.linkNames('monitor').catch(() => new Map<number, string>());
  }

  /** The monitor is its own async iterator (`for await (const ev of monitor)`). */
  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next event; waits for one. */
  async next(): Promise<IteratorResult<RtnlEvent>> {
    for (;;) {
      const r = await this.inner.next();
      if (r.done) {
        this.onClose(this);
        return { value: undefined, done: true };
      }
      const item = r.value;
      if ('overrun' in item) return { value: { type: 'overrun' }, done: false };
      const names = await this.names;
      let ev: RtnlEvent | undefined;
      try {
        const p = item.payload;
        switch (item.type) {
          case C.RTM_NEWLINK:
          case C.RTM_GETLINK:
          case C.RTM_SETLINK:
          case C.RTM_DELLINK: {
            const action = item.type === C.RTM_DELLINK ? 'del' : 'new';
            const m = decodeLinkView(p);
            const name = m.attrs.ifname;
            if (action === 'new' && name !== undefined) names.set(m.header.index, name);
            ev = { type: 'link', action, link: toLink(m, names) };
            if (action === 'del') names.delete(m.header.index);
            break;
          }
          case C.RTM_NEWADDR:
          case C.RTM_GETADDR:
          case C.RTM_DELADDR:
            ev = { type: 'address', action: item.type === C.RTM_DELADDR ? 'del' : 'new', address: toAddress(p, names) };
            break;
          case C.RTM_NEWROUTE:
          case C.RTM_GETROUTE:
          case C.RTM_DELROUTE:
            ev = { type: 'route', action: item.type === C.RTM_DELROUTE ? 'del' : 'new', route: toRoute(p, names) };
            break;
          case C.RTM_NEWNEIGH:
          case C.RTM_GETNEIGH:
          case C.RTM_DELNEIGH:
            ev = { type: 'neighbor', action: item.type === C.RTM_DELNEIGH ? 'del' : 'new', neighbor: toNeighbor(p, names) };
            break;
          default:
            break;
        }
      } catch (err) {
        if (!(err instanceof CodecError)) throw err;
        this.malformed++;
      }
      if (ev) return { value: ev, done: false };
    }
  }

  /** Stops the monitor (closes its socket). */
  async return(): Promise<IteratorResult<RtnlEvent>> {
    this.close();
    return { value: undefined, done: true };
  }

  /** Closes the monitor's socket; pending and later `next()` calls end the iteration. Idempotent. */
  close(): void {
    this.inner.close();
    this.onClose(this);
  }
}
