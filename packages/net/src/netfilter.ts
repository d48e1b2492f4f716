/**
 * {@link Netfilter}: a handle on the netfilter side of one network namespace over
 * NETLINK_NETFILTER (nfnetlink): its conntrack table and its nf_tables generation.
 * @module
 */
import { closeSync } from 'node:fs';
import * as N from './codec/nf-constants.js';
import { handleSocketOptions, openHandleNetns, type HandleOpenOptions } from './handle.js';
import { newConntrack, type Conntrack } from './netfilter/conntrack.js';
import { NetfilterContext } from './netfilter/context.js';
import { newNfTables, type NfTables } from './netfilter/nftables.js';
import { NetlinkSocket } from './transport/socket.js';

/** Which namespace {@link Netfilter.open} works in: at most one of `netns`, `path`, `pid`. Default: the caller's. */
export interface NetfilterOpenOptions extends HandleOpenOptions {}

/**
 * A handle on the netfilter state of one network namespace, like {@link Rtnl} for rtnetlink: it
 * keeps an fd of the namespace from open time and one NETLINK_NETFILTER socket created inside it.
 * Requests may run concurrently (many deletes in flight; dumps one after another).
 *
 * ```ts
 * const nf = await Netfilter.open({ netns: 'lab' });
 * console.log(await nf.conntrack.list({ protocol: 'tcp' }), await nf.nftables.generation());
 * nf.close();
 * ```
 */
export class Netfilter {
  /** Connection tracking entries: list (filtered), delete, deleteMatching. */
  readonly conntrack: Conntrack;
  /** nf_tables: the ruleset generation and a monitor of its changes. */
  readonly nftables: NfTables;
  private readonly ctx: NetfilterContext;
  private readonly nsFd: number;

  private constructor(sock: NetlinkSocket, nsFd: number) {
    this.nsFd = nsFd;
    this.ctx = new NetfilterContext(sock, `/proc/self/fd/${nsFd}`);
    this.conntrack = newConntrack(this.ctx);
    this.nftables = newNfTables(this.ctx);
  }

  /**
   * Opens a handle on the caller's namespace, or the one given by `netns`, `path` or `pid`.
   * @throws {ValidationError} bad options. {@link SystemError} the namespace or the socket cannot be opened.
   */
  static async open(options: NetfilterOpenOptions = {}): Promise<Netfilter> {
    const fd = openHandleNetns(options);
    try {
      return new Netfilter(NetlinkSocket.open(handleSocketOptions(fd, N.NETLINK_NETFILTER, options)), fd);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** A path naming this handle's namespace while it is open (`/proc/self/fd/N`), usable as `{ path }`. */
  get netnsPath(): string {
    return this.ctx.nsPath;
  }

  /** Whether {@link close} was called. */
  get isClosed(): boolean {
    return this.ctx.closed;
  }

  /** Closes the handle: pending requests reject with NetlinkClosedError, monitors end. Idempotent. */
  close(): void {
    if (this.ctx.closed) return;
    this.ctx.closed = true;
    for (const m of [...this.ctx.monitors]) m.close();
    this.ctx.sock.close();
    closeSync(this.nsFd);
  }
}
