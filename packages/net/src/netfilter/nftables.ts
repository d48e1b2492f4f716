/**
 * nf_tables of a namespace as far as vmhost needs it: the ruleset generation, and a monitor of
 * NFT_MSG_NEWGEN notifications (every committed ruleset change, iptables-nft's included, ends with
 * one naming the new generation and the process that made it), on NFNLGRP_NFTABLES.
 * @module
 */
import { CodecError } from '../codec/attrs.js';
import { decodeNftGenMessage, encodeNftGenMessage } from '../codec/nftables.js';
import * as N from '../codec/nf-constants.js';
import { ValidationError } from '../errors.js';
import { checkInt } from '../transport/options.js';
import type { NetlinkMonitor } from '../transport/monitor.js';
import { NetlinkSocket } from '../transport/socket.js';
import type { NetfilterContext } from './context.js';
import type { NftEvent, NftGeneration } from './types.js';

const NEWGEN = N.nfnlMsgType(N.NFNL_SUBSYS_NFTABLES, N.NFT_MSG_NEWGEN);
const GETGEN = N.nfnlMsgType(N.NFNL_SUBSYS_NFTABLES, N.NFT_MSG_GETGEN);

/** Options of {@link NfTables.monitor}. */
export interface NftMonitorOptions {
  /** Stops the monitor; the iteration then throws `signal.reason`. */
  signal?: AbortSignal;
  /**
   * Most notifications buffered while nobody reads (each rule of a change is one); beyond, they
   * are dropped for one `{ type: 'overrun' }`. Default 100,000.
   */
  highWaterMark?: number;
  /** Receive buffer in bytes (SO_RCVBUFFORCE); default 4 MiB. A big ruleset change sends one notification per rule. */
  rcvbuf?: number;
}

/** Makes the NfTables of a handle (its constructor is private: not part of the API). Internal. */
export let newNfTables: (ctx: NetfilterContext) => NfTables;

/** nf_tables of one {@link Netfilter} handle's namespace: the generation and its changes. */
export class NfTables {
  private constructor(private readonly ctx: NetfilterContext) {}
  static {
    newNfTables = (ctx) => new NfTables(ctx);
  }

  /**
   * The current ruleset generation (NFT_MSG_GETGEN). It changes with every committed change of
   * any table of this namespace (iptables-nft, ebtables-nft, nft).
   * @throws {NetlinkError} the kernel refused.
   */
  async generation(): Promise<NftGeneration> {
    const msgs = await this.ctx.request(GETGEN, 0, encodeNftGenMessage({ header: {}, attrs: {} }), 'nftables.generation');
    const m = msgs.find((x) => x.type === NEWGEN);
    const id = m === undefined ? undefined : decodeNftGenMessage(m.payload).attrs.id;
    if (id === undefined) throw new CodecError('NFT_MSG_GETGEN: no NFTA_GEN_ID in the answer', 0);
    return { id };
  }

  /**
   * Generation events of this namespace (not of others), subscribed from the moment it is made:
   * `for await (const ev of nf.nftables.monitor()) ...`. Each committed ruleset change gives one
   * `{ type: 'generation', id, pid, processName, changes }`; `{ type: 'overrun' }` means
   * notifications were lost (the ruleset may have changed in between: compare it).
   * `break`, `return()`, {@link NftMonitor.close} or closing the handle stops it.
   * @throws {ValidationError} bad options, or the handle is closed.
   */
  monitor(options: NftMonitorOptions = {}): NftMonitor {
    if (this.ctx.closed) throw new ValidationError('handle', 'closed', 'the handle is closed');
    if (options === null || typeof options !== 'object') throw new ValidationError('options', options, 'expected an object');
    const m = newNftMonitor(this.ctx, options);
    this.ctx.monitors.add(m);
    return m;
  }
}

let newNftMonitor: (ctx: NetfilterContext, options: NftMonitorOptions) => NftMonitor;

/**
 * An async iterator of {@link NftEvent}s, from {@link NfTables.monitor}. Notifications other than
 * NEWGEN (one per table, chain, rule or set changed) are counted into the next event's `changes`.
 */
export class NftMonitor implements AsyncIterableIterator<NftEvent> {
  private readonly inner: NetlinkMonitor;
  private readonly ctx: NetfilterContext;
  private changes = 0;
  /** Notifications that did not decode (skipped). */
  malformed = 0;

  static {
    newNftMonitor = (ctx, options) => new NftMonitor(ctx, options);
  }

  private constructor(ctx: NetfilterContext, options: NftMonitorOptions) {
    const opts: { netns: { path: string }; protocol: number; signal?: AbortSignal; highWaterMark?: number; rcvbuf?: number } = {
      netns: { path: ctx.nsPath },
      protocol: N.NETLINK_NETFILTER,
    };
    if (options.signal !== undefined) opts.signal = options.signal;
    if (options.highWaterMark !== undefined) opts.highWaterMark = checkInt('highWaterMark', options.highWaterMark, 1, 2 ** 31 - 1);
    if (options.rcvbuf !== undefined) opts.rcvbuf = options.rcvbuf;
    this.inner = NetlinkSocket.monitor([N.NFNLGRP_NFTABLES], opts);
    this.ctx = ctx;
  }

  /** The monitor is its own async iterator: `for await (const ev of monitor)`. */
  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next event; waits for one. */
  async next(): Promise<IteratorResult<NftEvent>> {
    for (;;) {
      const r = await this.inner.next();
      if (r.done) {
        this.ctx.monitors.delete(this);
        return { value: undefined, done: true };
      }
      const item = r.value;
      if ('overrun' in item) {
        this.changes = 0;
        return { value: { type: 'overrun' }, done: false };
      }
      if (item.type !== NEWGEN) {
        this.changes++;
        continue;
      }
      try {
        const a = decodeNftGenMessage(item.payload).attrs;
        const changes = this.changes;
        this.changes = 0;
        if (a.id === undefined) {
          this.malformed++;
          continue;
        }
        return { value: { type: 'generation', id: a.id, pid: a.procPid ?? null, processName: a.procName ?? null, changes }, done: false };
      } catch (err) {
        if (!(err instanceof CodecError)) throw err;
        this.malformed++;
      }
    }
  }

  /** Stops the monitor (closes its socket). */
  async return(): Promise<IteratorResult<NftEvent>> {
    this.close();
    return { value: undefined, done: true };
  }

  /** Notifications buffered and not yet read. */
  get buffered(): number {
    return this.inner.buffered;
  }

  /** Overruns so far: the kernel's queue overflowed, or more than `highWaterMark` notifications waited. */
  get overruns(): number {
    return this.inner.overruns;
  }

  /** Closes the monitor's socket; pending and later `next()` calls end the iteration. Idempotent. */
  close(): void {
    this.inner.close();
    this.ctx.monitors.delete(this);
  }
}
