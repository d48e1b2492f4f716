/**
 * {@link NetlinkMonitor}: an async iterator of the multicast notifications of one netlink socket.
 * @module
 */
import { constants as osConstants } from 'node:os';
import { ValidationError } from '../errors.js';
import type { NetnsRef } from '../netns.js';
import { nativeDriver, type NetlinkDriver, type NetlinkDriverFactory } from './driver.js';
import { NetlinkDecodeError, NetlinkError } from './errors.js';
import { Fifo } from './fifo.js';
import { decodeNlMsgs, NETLINK_ROUTE, NLMSG_NOOP, type NlMsg } from './message.js';
import { checkInt, validateCommon } from './options.js';

const ENOBUFS = osConstants.errno.ENOBUFS;
/** Default receive buffer (SO_RCVBUFFORCE). */
export const DEFAULT_RCVBUF = 4 * 1024 * 1024;

/** A multicast notification stream's signal that notifications were lost: re-read the state. */
export interface Overrun {
  overrun: true;
}

/** Options of {@link NetlinkSocket.monitor}. */
export interface MonitorOptions {
  /** Network namespace to watch (default: the caller's). */
  netns?: NetnsRef;
  /** Netlink protocol; default NETLINK_ROUTE (0). */
  protocol?: number;
  /** Receive buffer in bytes; default 4 MiB. */
  rcvbuf?: number;
  /** Stops the monitor; the iteration then throws `signal.reason`. */
  signal?: AbortSignal;
  /** Most notifications buffered while nobody reads; beyond, they are dropped for one `{ overrun: true }`. Default 100,000. */
  highWaterMark?: number;
}

/** {@link MonitorOptions} with the low-level driver (the unit tests' seam). Not exported from the package root. */
export interface DriverMonitorOptions extends MonitorOptions {
  /** Default: the native addon. */
  driver?: NetlinkDriverFactory;
}

/** Opens a monitor (what {@link NetlinkSocket.monitor} does; the constructor is private). Internal. */
export let openMonitor: (groups: number[], options?: DriverMonitorOptions) => NetlinkMonitor;

/**
 * An async iterator of multicast notifications, from {@link NetlinkSocket.monitor}.
 * Items are netlink messages (e.g. RTM_NEWLINK) or `{ overrun: true }` after lost notifications.
 */
export class NetlinkMonitor implements AsyncIterableIterator<NlMsg | Overrun> {
  /** The monitor socket's port id. */
  readonly portId: number;
  private readonly driver: NetlinkDriver;
  private readonly items = new Fifo<NlMsg | Overrun>();
  private readonly waiters: Array<{ resolve: (r: IteratorResult<NlMsg | Overrun>) => void; reject: (e: unknown) => void }> = [];
  private readonly highWaterMark: number;
  private closed = false;
  private failure: { error: unknown } | undefined;
  private refed = false;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort: (() => void) | undefined;
  /** Overruns signalled (kernel ENOBUFS, or the high-water mark reached). */
  overruns = 0;
  /** Notifications dropped here because nobody read them (high-water mark); the kernel's drops are not countable. */
  dropped = 0;
  /** Datagrams that did not decode. */
  malformed = 0;

  static {
    openMonitor = (groups, options) => new NetlinkMonitor(groups, options);
  }

  /** Use {@link NetlinkSocket.monitor}. */
  private constructor(groups: number[], options: DriverMonitorOptions = {}) {
    validateCommon(options);
    if (!Array.isArray(groups) || groups.length === 0) throw new ValidationError('groups', groups, 'expected a non-empty array of group numbers');
    groups.forEach((g, i) => checkInt(`groups[${i}]`, g, 1, 1023));
    this.highWaterMark =
      options.highWaterMark === undefined ? 100_000 : checkInt('highWaterMark', options.highWaterMark, 1, 2 ** 31 - 1);
    this.signal = options.signal;
    if (this.signal?.aborted) throw this.signal.reason;
    const driverOptions: { protocol: number; rcvbuf: number; netns?: NetnsRef } = {
      protocol: options.protocol ?? NETLINK_ROUTE,
      rcvbuf: options.rcvbuf ?? DEFAULT_RCVBUF,
    };
    if (options.netns !== undefined) driverOptions.netns = options.netns;
    this.driver = (options.driver ?? nativeDriver)(driverOptions, (errno, dgs) => this.onData(errno, dgs));
    this.portId = this.driver.portId;
    try {
      for (const g of groups) this.driver.addMembership(g);
    } catch (err) {
      this.driver.close();
      throw err;
    }
    if (this.signal) {
      const signal = this.signal;
      this.onAbort = () => this.fail(signal.reason);
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  /** The monitor is its own async iterator (`for await (const msg of monitor)`: messages, and an `Overrun` when some were lost). */
  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next notification; waits for one. */
  next(): Promise<IteratorResult<NlMsg | Overrun>> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.failure) {
      const { error } = this.failure;
      this.failure = undefined;
      return Promise.reject(error);
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.updateRef();
    });
  }

  /** Stops the monitor and closes its socket (what `break` in `for await` calls). */
  return(): Promise<IteratorResult<NlMsg | Overrun>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Same as {@link return}. */
  throw(err?: unknown): Promise<IteratorResult<NlMsg | Overrun>> {
    this.close();
    return err === undefined ? Promise.resolve({ value: undefined, done: true }) : Promise.reject(err);
  }

  /** Closes the socket; a waiting `next()` ends the iteration. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.items.drain();
    if (this.signal && this.onAbort) this.signal.removeEventListener('abort', this.onAbort);
    for (const w of this.waiters.splice(0)) w.resolve({ value: undefined, done: true });
    this.updateRef();
    this.driver.close();
  }

  /** Notifications buffered and not yet read. */
  get buffered(): number {
    return this.items.length;
  }

  private fail(error: unknown): void {
    if (this.closed) return;
    const waiters = this.waiters.splice(0);
    this.close();
    if (waiters.length > 0) for (const w of waiters) w.reject(error);
    else this.failure = { error };
  }

  private push(item: NlMsg | Overrun): void {
    const w = this.waiters.shift();
    if (w) {
      w.resolve({ value: item, done: false });
      this.updateRef();
      return;
    }
    if (this.items.length >= this.highWaterMark) {
      // The consumer is too slow: drop what is buffered (it must resync anyway) and say so.
      this.overruns++;
      this.dropped += this.items.length;
      this.items.drain();
      this.items.push({ overrun: true });
    }
    this.items.push(item);
  }

  private onData(errno: number, datagrams: Buffer[]): void {
    if (this.closed) return;
    for (const dg of datagrams) {
      let msgs: NlMsg[];
      try {
        msgs = decodeNlMsgs(dg);
      } catch (err) {
        if (!(err instanceof NetlinkDecodeError)) throw err;
        this.malformed++;
        continue;
      }
      for (const m of msgs) {
        if (m.type === NLMSG_NOOP) continue;
        this.push(m);
        if (this.closed) return;
      }
    }
    if (errno === ENOBUFS) {
      this.overruns++;
      this.push({ overrun: true });
    } else if (errno !== 0) {
      this.fail(new NetlinkError(errno, 'netlink monitor', undefined, { detail: 'recv failed' }));
    }
  }

  private updateRef(): void {
    const want = !this.closed && this.waiters.length > 0;
    if (want !== this.refed) {
      this.refed = want;
      if (!this.closed || !want) this.driver.ref(want);
    }
  }
}
