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
