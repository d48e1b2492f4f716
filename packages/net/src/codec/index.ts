/**
 * The rtnetlink codec: pure functions from typed messages to bytes and back (no I/O), the
 * message and attribute types, the generic attribute writer and reader, and the constants.
 * Schemas, value codecs and header helpers are internal (import them from their files).
 * @module
 */
export * as constants from './constants.js';
export { CodecError, Writer, parseAttrs, type RawAttr, type WithOther } from './attrs.js';
export { encodeLinkMessage, decodeLinkMessage } from './link.js';
export type {
  IfInfoMsg, LinkAttrs, LinkInfoAttrs, LinkMessage, OtherKindData,
  VethData, BridgeData, BridgePortData, VlanData, MacvlanData, VxlanData, TunData,
} from './link.js';
export { encodeAddressMessage, decodeAddressMessage } from './address.js';
export type { AddressAttrs, AddressMessage, IfAddrMsg, IfaCacheInfo } from './address.js';
export { encodeRouteMessage, decodeRouteMessage } from './route.js';
export type { RouteAttrs, RouteMessage, RtMsg, RouteMetrics } from './route.js';
export { encodeNeighborMessage, decodeNeighborMessage } from './neighbor.js';
export type { NeighborAttrs, NeighborMessage, NdMsg, NdaCacheInfo } from './neighbor.js';
export { decodeRtnlMessage, type RtnlMessage } from './message.js';
// nfnetlink (NETLINK_NETFILTER): the nfgenmsg header, conntrack and nf_tables generation messages.
export * as nfConstants from './nf-constants.js';
export { readNfGenMsg, writeNfGenMsg, splitNfnlType, type NfGenMsg } from './nfnetlink.js';
export { encodeConntrackMessage, decodeConntrackMessage } from './conntrack.js';
export type {
  ConntrackAttrs, ConntrackMessage, CtTupleAttrs, CtIpAttrs, CtProtoAttrs, CtProtoInfoAttrs, CtTcpInfoAttrs, CtTcpFlags,
  CtCountersAttrs, CtHelpAttrs, CtFilterAttrs,
} from './conntrack.js';
export { encodeNftGenMessage, decodeNftGenMessage, type NftGenAttrs, type NftGenMessage } from './nftables.js';
// Traffic control (rtnetlink): tcmsg with TCA_* (qdiscs and classes), options per kind.
export * as tcConstants from './tc-constants.js';
export { encodeTcMessage, decodeTcMessage } from './tc.js';
export type {
  TcMsg, TcAttrs, TcMessage, TcStats2Attrs, TcStatsBasic, TcStatsQueue, HtbOptions, HtbParms, HtbGlob, TbfOptions, TbfParms, FifoOptions,
  IngressOptions, RateSpec,
} from './tc.js';
export { encodeFilterMessage, decodeFilterMessage } from './tc-filter.js';
export type { TcFilterAttrs, TcFilterMessage, U32Options, U32Sel, U32KeyRaw, TcActionAttrs, MirredOptions, TcMirredParms } from './tc-filter.js';
