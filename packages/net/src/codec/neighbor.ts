/**
 * Neighbour messages (RTM_NEWNEIGH/DELNEIGH/GETNEIGH): `struct ndmsg` followed by NDA_* attributes.
 * @module
 */
import * as C from './constants.js';
import { be16, CodecError, decodeAttrs, encodeAttrs, hwaddr, ip, s32, schema, structU32, u16, u32, u8, Writer, type Schema, type WithOther } from './attrs.js';

/** `struct ndmsg` (12 bytes). */
export interface NdMsg {
  family: number;
  index: number;
  /** NUD_* bits. */
  state: number;
  /** NTF_* bits. */
  flags: number;
  /** RTN_* type. */
  type: number;
}

export const NDMSG_LEN = 12;

/** NDA_CACHEINFO (clock ticks). */
export interface NdaCacheInfo {
  confirmed: number;
  used: number;
  updated: number;
  refcnt: number;
}

/** NDA_* attributes. */
export interface NeighborAttrs extends WithOther {
  dst?: string;
  lladdr?: string;
  cacheinfo?: NdaCacheInfo;
  probes?: number;
  vlan?: number;
  port?: number;
  vni?: number;
  ifindex?: number;
  master?: number;
  linkNetnsid?: number;
  protocol?: number;
  flagsExt?: number;
}

/** The payload of an RTM_*NEIGH message (a neighbour): its `ndmsg` header and its NDA_* attributes. */
export interface NeighborMessage {
  /** The fixed `ndmsg` header. */
  header: NdMsg;
  /** The attributes, by name; those the schema does not know are kept in `other`. */
  attrs: NeighborAttrs;
}

export const neighborSchema: Schema = schema('neighbor', [
  [C.NDA_DST, 'dst', ip],
  [C.NDA_LLADDR, 'lladdr', hwaddr],
  [C.NDA_CACHEINFO, 'cacheinfo', structU32(['confirmed', 'used', 'updated', 'refcnt'] as const)],
  [C.NDA_PROBES, 'probes', u32],
  [C.NDA_VLAN, 'vlan', u16],
  [C.NDA_PORT, 'port', be16],
  [C.NDA_VNI, 'vni', u32],
  [C.NDA_IFINDEX, 'ifindex', u32],
  [C.NDA_MASTER, 'master', u32],
  [C.NDA_LINK_NETNSID, 'linkNetnsid', s32],
  [C.NDA_PROTOCOL, 'protocol', u8],
  [C.NDA_FLAGS_EXT, 'flagsExt', u32],
]);

/** Encodes a neighbour's message payload (ndmsg + attributes); header fields left out are 0. */
export function encodeNeighborMessage(m: { header: Partial<NdMsg>; attrs: NeighborAttrs }): Buffer {
  const w = new Writer(64);
  const h = m.header;
  w.u8(h.family ?? 0).u8(0).u16(0).s32(h.index ?? 0).u16(h.state ?? 0).u8(h.flags ?? 0).u8(h.type ?? 0);
  encodeAttrs(w, neighborSchema, m.attrs);
  return w.finish();
}

/** Decodes a neighbour's message payload. Throws {@link CodecError} if it is truncated or malformed. */
export function decodeNeighborMessage(payload: Buffer): NeighborMessage {
  return decodeNeighborAt(payload, neighborSchema, false);
}

/** Decodes `payload` with `s` (the NDA_* schema or a pick of it), lean or not (see decodeAttrs). Internal. */
export function decodeNeighborAt(payload: Buffer, s: Schema, lean: boolean): NeighborMessage {
  if (payload.length < NDMSG_LEN) throw new CodecError(`ndmsg needs ${NDMSG_LEN} bytes, got ${payload.length}`, 0);
  return {
    header: {
      family: payload[0] as number,
      index: payload.readInt32LE(4),
      state: payload.readUInt16LE(8),
      flags: payload[10] as number,
      type: payload[11] as number,
    },
    attrs: decodeAttrs<NeighborAttrs>(s, payload, NDMSG_LEN, payload.length, lean),
  };
}
