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
// IP addresses and prefixes (parse, canonical and iptables text, contains, nth, ...).
export * as ip from './ip/index.js';
export type { Prefix, PrefixLike, ParsePrefixOptions, IpFamily } from './ip/index.js';
// Processes (docs/net-processes.md): /proc facts, terminate by pid, owner records, the open-file limit.
export * from './proc/index.js';
// Netlink transport (docs/net-transport.md): the socket, its errors; framing and constants under `netlink`.
export * as netlink from './transport/index.js';
export { NetlinkSocket } from './transport/socket.js';
export type { NetlinkSocketOptions, RequestOptions, NetlinkSocketStats } from './transport/socket.js';
export type { NetlinkMonitor, MonitorOptions, Overrun } from './transport/monitor.js';
export type { NlMsg, Nlmsgerr, Extack } from './transport/message.js';
export {
  NetlinkError,
  NetlinkDecodeError,
  NetlinkClosedError,
  NetlinkTimeoutError,
  NetlinkDumpInterruptedError,
} from './transport/errors.js';
// The rtnetlink codec (docs/net-codec.md): message encoders/decoders and their types.
export * as codec from './codec/index.js';
// rtnetlink API (docs/net-api.md): one handle per namespace, one module per object kind.
export { Rtnl } from './rtnl.js';
export type { RtnlOpenOptions } from './rtnl.js';
export type { HandleOpenOptions } from './handle.js';
export type { Links } from './links/links.js';
export type { Addresses } from './addresses.js';
export type { Routes } from './routes.js';
export type { Neighbors } from './neighbors.js';
export { Sysctl, sysctlPath } from './sysctl.js';
export type { SysctlValue } from './sysctl.js';
export type { RtnlMonitor, MonitorEventsOptions } from './monitor.js';
export type * from './types.js';
// netfilter API (docs/net-conntrack.md): one handle per namespace over NETLINK_NETFILTER.
export { Netfilter } from './netfilter.js';
export type { NetfilterOpenOptions } from './netfilter.js';
export type { Conntrack } from './netfilter/conntrack.js';
export type { NfTables, NftMonitor, NftMonitorOptions } from './netfilter/nftables.js';
export type * from './netfilter/types.js';
// Traffic control over rtnetlink (docs/net-tc.md): qdiscs, classes and filters of an Rtnl handle.
export type { Qdiscs } from './tc/qdiscs.js';
export type { Classes } from './tc/classes.js';
export type { Filters } from './tc/filters.js';
export { parseRate } from './tc/rate.js';
export type * from './tc/types.js';
