/**
 * @vmhost/net: native rtnetlink control of links, addresses, routes, neighbours and network
 * namespaces for Node.
 * @module
 */
export * as netns from './netns.js';
export type { NetnsRef, RunResult, RunOptions } from './netns.js';
export { VmhostError, ValidationError, SystemError } from './errors.js';
export { openTap, createPersistentTap, setTapPersist } from './tap.js';
export type { OpenTapOptions, TapFd } from './tap.js';
export * from './validate.js';
// Processes (docs/net-processes.md): /proc facts, terminate by pid, owner records.
export * from './proc/index.js';
// Netlink transport (docs/net-transport.md): sockets, framing, errors. Constants under `netlink`.
export * as netlink from './transport/index.js';
export { NetlinkSocket, NetlinkMonitor } from './transport/socket.js';
export type { NetlinkSocketOptions, RequestOptions, NetlinkSocketStats, MonitorOptions, Overrun } from './transport/socket.js';
export { encodeNlMsg, decodeNlMsgs, parseNlmsgerr, parseNlmsgDone } from './transport/message.js';
export type { NlMsg, Nlmsgerr, Extack } from './transport/message.js';
export {
  NetlinkError,
  NetlinkDecodeError,
  NetlinkClosedError,
  NetlinkTimeoutError,
  NetlinkDumpInterruptedError,
} from './transport/errors.js';
export type { NetlinkDriver, NetlinkDriverFactory } from './transport/driver.js';
export * as codec from './codec/index.js';
// rtnetlink API (docs/net-api.md): one handle per namespace, one module per object kind.
export { Rtnl } from './rtnl.js';
export type { RtnlOpenOptions } from './rtnl.js';
export { Links } from './links.js';
export { Addresses } from './addresses.js';
export { Routes } from './routes.js';
export { Neighbors } from './neighbors.js';
export { Sysctl, sysctlPath } from './sysctl.js';
export type { SysctlValue } from './sysctl.js';
export { RtnlMonitor } from './monitor.js';
export type { MonitorEventsOptions } from './monitor.js';
export type * from './types.js';
