/**
 * The netlink transport of @vmhost/net: framing ({@link encodeNlMsg}, {@link decodeNlMsgs},
 * {@link parseNlmsgerr}), typed errors, and {@link NetlinkSocket} (sequence correlation, corked
 * sends, dumps, extended acks) with {@link NetlinkSocket.monitor} for notifications.
 * See docs/net-transport.md.
 * @module
 */
export * from './message.js';
export * from './errors.js';
export { NetlinkSocket, MAX_DATAGRAM, DEFAULT_MAX_IN_FLIGHT, DEFAULT_DUMP_ATTEMPTS } from './socket.js';
export type { NetlinkSocketOptions, RequestOptions, NetlinkSocketStats } from './socket.js';
export { NetlinkMonitor, DEFAULT_RCVBUF } from './monitor.js';
export type { MonitorOptions, Overrun } from './monitor.js';
