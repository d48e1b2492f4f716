/**
 * Conntrack messages of ctnetlink (NFNL_SUBSYS_CTNETLINK: IPCTNL_MSG_CT_NEW/GET/DELETE):
 * `struct nfgenmsg` followed by CTA_* attributes — tuples (CTA_TUPLE_IP, CTA_TUPLE_PROTO, zone),
 * status, timeout, mark, protocol info (TCP state), counters, id, zone and the dump filter
 * (CTA_FILTER). Integers are big endian on the wire except CTA_PROTO_NUM (u8) and the filter's
 * flag words (host u32). Unknown attributes are kept in `other`. Pure.
 * @module
 */
import { be16, binary, decodeAttrs, encodeAttrs, in4, in6, nested, schema, string, u32, u8, Writer, type Schema, type ValueCodec, type WithOther, onPayload } from './attrs.js';
import * as N from './nf-constants.js';
import { be32, be64, readNfGenMsg, writeNfGenMsg, type NfGenMsg } from './nfnetlink.js';

/** CTA_TUPLE_IP: the addresses of one direction. */
export interface CtIpAttrs extends WithOther {
  v4Src?: string;
  v4Dst?: string;
  v6Src?: string;
  v6Dst?: string;
}

/** CTA_TUPLE_PROTO: the layer-4 part of one direction (ports, or ICMP id/type/code). */
export interface CtProtoAttrs extends WithOther {
  num?: number;
  srcPort?: number;
  dstPort?: number;
  icmpId?: number;
  icmpType?: number;
  icmpCode?: number;
  icmpv6Id?: number;
  icmpv6Type?: number;
  icmpv6Code?: number;
}

/** CTA_TUPLE_ORIG / CTA_TUPLE_REPLY. */
export interface CtTupleAttrs extends WithOther {
  ip?: CtIpAttrs;
  proto?: CtProtoAttrs;
  /** CTA_TUPLE_ZONE: a zone of this direction only. */
  zone?: number;
}

/** `struct nf_ct_tcp_flags`. */
export interface CtTcpFlags {
  flags: number;
  mask: number;
}

/** CTA_PROTOINFO_TCP. */
export interface CtTcpInfoAttrs extends WithOther {
  /** TCP_CONNTRACK_* number. */
  state?: number;
  wscaleOriginal?: number;
  wscaleReply?: number;
  flagsOriginal?: CtTcpFlags;
  flagsReply?: CtTcpFlags;
}

/** CTA_PROTOINFO. */
export interface CtProtoInfoAttrs extends WithOther {
  tcp?: CtTcpInfoAttrs;
}

/** CTA_COUNTERS_ORIG / CTA_COUNTERS_REPLY (only with net.netfilter.nf_conntrack_acct=1). */
export interface CtCountersAttrs extends WithOther {
  packets?: bigint;
  bytes?: bigint;
}

/** CTA_HELP. */
export interface CtHelpAttrs extends WithOther {
  name?: string;
}

/** CTA_FILTER: which fields of CTA_TUPLE_ORIG / CTA_TUPLE_REPLY a dump compares (CTA_FILTER_F_* bits). */
export interface CtFilterAttrs extends WithOther {
  origFlags?: number;
  replyFlags?: number;
}

/** CTA_* attributes of a conntrack message. */
export interface ConntrackAttrs extends WithOther {
  tupleOrig?: CtTupleAttrs;
  tupleReply?: CtTupleAttrs;
  /** IPS_* bits. */
  status?: number;
  protoinfo?: CtProtoInfoAttrs;
  help?: CtHelpAttrs;
  /** Seconds left. */
  timeout?: number;
  mark?: number;
  countersOrig?: CtCountersAttrs;
  countersReply?: CtCountersAttrs;
  use?: number;
  id?: number;
  zone?: number;
  markMask?: number;
  labels?: Buffer;
  filter?: CtFilterAttrs;
  statusMask?: number;
}

/** A conntrack message: header and attributes. */
export interface ConntrackMessage {
  header: NfGenMsg;
  attrs: ConntrackAttrs;
}

const tcpFlags: ValueCodec<CtTcpFlags> = {
  decode: onPayload((d) => (d.length === 2 ? { flags: d[0]!, mask: d[1]! } : undefined)),
  encode: (w, t, v) => void w.attr(t, Buffer.from([v.flags & 0xff, v.mask & 0xff])),
};

const ipSchema = schema('ctattr_ip', [
  [N.CTA_IP_V4_SRC, 'v4Src', in4],
  [N.CTA_IP_V4_DST, 'v4Dst', in4],
  [N.CTA_IP_V6_SRC, 'v6Src', in6],
  [N.CTA_IP_V6_DST, 'v6Dst', in6],
]);

const protoSchema = schema('ctattr_l4proto', [
  [N.CTA_PROTO_NUM, 'num', u8],
  [N.CTA_PROTO_SRC_PORT, 'srcPort', be16],
  [N.CTA_PROTO_DST_PORT, 'dstPort', be16],
  [N.CTA_PROTO_ICMP_ID, 'icmpId', be16],
  [N.CTA_PROTO_ICMP_TYPE, 'icmpType', u8],
  [N.CTA_PROTO_ICMP_CODE, 'icmpCode', u8],
  [N.CTA_PROTO_ICMPV6_ID, 'icmpv6Id', be16],
  [N.CTA_PROTO_ICMPV6_TYPE, 'icmpv6Type', u8],
  [N.CTA_PROTO_ICMPV6_CODE, 'icmpv6Code', u8],
]);

const tupleSchema = schema('ctattr_tuple', [
  [N.CTA_TUPLE_IP, 'ip', nested(ipSchema)],
  [N.CTA_TUPLE_PROTO, 'proto', nested(protoSchema)],
  [N.CTA_TUPLE_ZONE, 'zone', be16],
]);

const tcpSchema = schema('ctattr_protoinfo_tcp', [
  [N.CTA_PROTOINFO_TCP_STATE, 'state', u8],
  [N.CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, 'wscaleOriginal', u8],
  [N.CTA_PROTOINFO_TCP_WSCALE_REPLY, 'wscaleReply', u8],
  [N.CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, 'flagsOriginal', tcpFlags],
  [N.CTA_PROTOINFO_TCP_FLAGS_REPLY, 'flagsReply', tcpFlags],
]);

const protoinfoSchema = schema('ctattr_protoinfo', [[N.CTA_PROTOINFO_TCP, 'tcp', nested(tcpSchema)]]);

const countersSchema = schema('ctattr_counters', [
  [N.CTA_COUNTERS_PACKETS, 'packets', be64],
  [N.CTA_COUNTERS_BYTES, 'bytes', be64],
]);

const filterSchema = schema('ctattr_filter', [
  [N.CTA_FILTER_ORIG_FLAGS, 'origFlags', u32],
  [N.CTA_FILTER_REPLY_FLAGS, 'replyFlags', u32],
]);

/** The CTA_* attribute space. Fields are written in this order (tuples first, as conntrack(8) does). */
export const conntrackSchema: Schema = schema('ctattr', [
  [N.CTA_TUPLE_ORIG, 'tupleOrig', nested(tupleSchema)],
  [N.CTA_TUPLE_REPLY, 'tupleReply', nested(tupleSchema)],
  [N.CTA_STATUS, 'status', be32],
  [N.CTA_PROTOINFO, 'protoinfo', nested(protoinfoSchema)],
  [N.CTA_HELP, 'help', nested(schema('ctattr_help', [[N.CTA_HELP_NAME, 'name', string]]))],
  [N.CTA_TIMEOUT, 'timeout', be32],
  [N.CTA_MARK, 'mark', be32],
  [N.CTA_COUNTERS_ORIG, 'countersOrig', nested(countersSchema)],
  [N.CTA_COUNTERS_REPLY, 'countersReply', nested(countersSchema)],
  [N.CTA_USE, 'use', be32],
  [N.CTA_ID, 'id', be32],
  [N.CTA_ZONE, 'zone', be16],
  [N.CTA_MARK_MASK, 'markMask', be32],
  [N.CTA_LABELS, 'labels', binary],
  [N.CTA_FILTER, 'filter', nested(filterSchema)],
  [N.CTA_STATUS_MASK, 'statusMask', be32],
]);

/** Encodes a conntrack message body (nfgenmsg + CTA_* attributes). */
export function encodeConntrackMessage(m: { header: Partial<NfGenMsg>; attrs: ConntrackAttrs }): Buffer {
  const w = new Writer(128);
  writeNfGenMsg(w, m.header);
  encodeAttrs(w, conntrackSchema, m.attrs);
  return w.finish();
}

/** Decodes a conntrack message body. Throws {@link CodecError} on structural damage. */
export function decodeConntrackMessage(payload: Buffer): ConntrackMessage {
  return { header: readNfGenMsg(payload), attrs: decodeAttrs<ConntrackAttrs>(conntrackSchema, payload, N.NFGENMSG_LEN) };
}
