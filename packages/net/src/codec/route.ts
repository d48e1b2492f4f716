/**
 * Route messages (RTM_NEWROUTE/DELROUTE/GETROUTE): `struct rtmsg` followed by RTA_* attributes.
 * @module
 */
import * as C from './constants.js';
import { binary, CodecError, decodeAttrs, encodeAttrs, ip, nested, schema, string, u32, u8, Writer, type Schema, type WithOther } from './attrs.js';

/** `struct rtmsg` (12 bytes). */
export interface RtMsg {
  family: number;
  dstLength: number;
  srcLength: number;
  tos: number;
  /** RT_TABLE_* (tables above 255 travel in RTA_TABLE, with RT_TABLE_UNSPEC here). */
  table: number;
  /** RTPROT_*. */
  protocol: number;
  /** RT_SCOPE_*. */
  scope: number;
  /** RTN_*. */
  type: number;
  /** RTM_F_* / RTNH_F_*. */
  flags: number;
}

export const RTMSG_LEN = 12;

/** RTA_METRICS (RTAX_*). */
export interface RouteMetrics extends WithOther {
  lock?: number;
  mtu?: number;
  window?: number;
  rtt?: number;
  rttvar?: number;
  ssthresh?: number;
  cwnd?: number;
  advmss?: number;
  reordering?: number;
  hoplimit?: number;
  initcwnd?: number;
  features?: number;
  rtoMin?: number;
  initrwnd?: number;
  quickack?: number;
  ccAlgo?: string;
}

export const metricsSchema: Schema = schema('metrics', [
  [1, 'lock', u32],
  [2, 'mtu', u32],
  [3, 'window', u32],
  [4, 'rtt', u32],
  [5, 'rttvar', u32],
  [6, 'ssthresh', u32],
  [7, 'cwnd', u32],
  [8, 'advmss', u32],
  [9, 'reordering', u32],
  [10, 'hoplimit', u32],
  [11, 'initcwnd', u32],
  [12, 'features', u32],
  [13, 'rtoMin', u32],
  [14, 'initrwnd', u32],
  [15, 'quickack', u32],
  [16, 'ccAlgo', string],
]);

/** RTA_* attributes. RTA_MULTIPATH, RTA_CACHEINFO and RTA_VIA are kept as bytes. */
export interface RouteAttrs extends WithOther {
  dst?: string;
  src?: string;
  iif?: number;
  oif?: number;
  gateway?: string;
  priority?: number;
  prefsrc?: string;
  metrics?: RouteMetrics;
  multipath?: Buffer;
  flow?: number;
  cacheinfo?: Buffer;
  table?: number;
  mark?: number;
  via?: Buffer;
  pref?: number;
  expires?: number;
  uid?: number;
  nhId?: number;
}

/** The payload of an RTM_*ROUTE message (a route): its `rtmsg` header and its RTA_* attributes. */
export interface RouteMessage {
  /** The fixed `rtmsg` header. */
  header: RtMsg;
  /** The attributes, by name; those the schema does not know are kept in `other`. */
  attrs: RouteAttrs;
}

export const routeSchema: Schema = schema('route', [
  [C.RTA_DST, 'dst', ip],
  [C.RTA_SRC, 'src', ip],
  [C.RTA_IIF, 'iif', u32],
  [C.RTA_OIF, 'oif', u32],
  [C.RTA_GATEWAY, 'gateway', ip],
  [C.RTA_PRIORITY, 'priority', u32],
  [C.RTA_PREFSRC, 'prefsrc', ip],
  [C.RTA_METRICS, 'metrics', nested(metricsSchema, false)],
  [C.RTA_MULTIPATH, 'multipath', binary],
  [C.RTA_FLOW, 'flow', u32],
  [C.RTA_CACHEINFO, 'cacheinfo', binary],
  [C.RTA_TABLE, 'table', u32],
  [C.RTA_MARK, 'mark', u32],
  [C.RTA_VIA, 'via', binary],
  [C.RTA_PREF, 'pref', u8],
  [C.RTA_EXPIRES, 'expires', u32],
  [C.RTA_UID, 'uid', u32],
  [C.RTA_NH_ID, 'nhId', u32],
]);

/** Encodes a route's message payload (rtmsg + attributes); header fields left out are 0. */
export function encodeRouteMessage(m: { header: Partial<RtMsg>; attrs: RouteAttrs }): Buffer {
  const w = new Writer(64);
  const h = m.header;
  w.u8(h.family ?? 0).u8(h.dstLength ?? 0).u8(h.srcLength ?? 0).u8(h.tos ?? 0);
  w.u8(h.table ?? 0).u8(h.protocol ?? 0).u8(h.scope ?? 0).u8(h.type ?? 0).u32(h.flags ?? 0);
  encodeAttrs(w, routeSchema, m.attrs);
  return w.finish();
}

/** Decodes a route's message payload. Throws {@link CodecError} if it is truncated or malformed. */
export function decodeRouteMessage(payload: Buffer): RouteMessage {
  return decodeRouteAt(payload, routeSchema, false);
}

/** Decodes `payload` with `s` (the RTA_* schema or a pick of it), lean or not (see decodeAttrs). Internal. */
export function decodeRouteAt(payload: Buffer, s: Schema, lean: boolean): RouteMessage {
  if (payload.length < RTMSG_LEN) throw new CodecError(`rtmsg needs ${RTMSG_LEN} bytes, got ${payload.length}`, 0);
  return {
    header: {
      family: payload[0] as number,
      dstLength: payload[1] as number,
      srcLength: payload[2] as number,
      tos: payload[3] as number,
      table: payload[4] as number,
      protocol: payload[5] as number,
      scope: payload[6] as number,
      type: payload[7] as number,
      flags: payload.readUInt32LE(8),
    },
    attrs: decodeAttrs<RouteAttrs>(s, payload, RTMSG_LEN, payload.length, lean),
  };
}
