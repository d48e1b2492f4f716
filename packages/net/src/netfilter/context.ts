/**
 * What the netfilter modules (conntrack, nftables) share from their {@link Netfilter} handle. Internal.
 * @module
 */
import type { NlMsg } from '../transport/message.js';
import type { NetlinkSocket } from '../transport/socket.js';

/** The handle's NETLINK_NETFILTER socket, its namespace, and the monitors to close with it. */
export class NetfilterContext {
  /** Monitors opened through the handle: closed when it closes. */
  readonly monitors = new Set<{ close(): void }>();
  /** Whether the handle was closed. */
  closed = false;

  constructor(
    readonly sock: NetlinkSocket,
    /** The handle's namespace as a path that stays valid while the handle is open (`/proc/self/fd/N`). */
    readonly nsPath: string,
  ) {}

  request(type: number, flags: number, payload: Buffer, op: string): Promise<NlMsg[]> {
    return this.sock.request(type, flags, payload, { op });
  }
}
