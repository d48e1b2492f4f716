/**
 * Link messages (RTM_NEWLINK/DELLINK/GETLINK/SETLINK): `struct ifinfomsg` followed by IFLA_*
 * attributes, with IFLA_LINKINFO decoded per kind (veth, bridge, vlan, macvlan, vxlan, tun) and
 * bridge-port slave data. Unknown attributes are kept in `other`.
 * @module
 */
import * as C from './constants.js';
import {
  align4, CodecError, decodeAttrs, decodeNested, emitRawAttrs, encodeAttrs, hwaddr, rawAttr, s32, schema, string, u32, u8,
  Writer, type RawAttr, type Schema, type ValueCodec, type WithOther,
} from './attrs.js';
import { kindOfInfo, type LinkMessageCodec } from '../links/kinds/index.js';
import type { BridgeData, BridgePortData } from '../links/kinds/bridge.js';
import type { MacvlanData } from '../links/kinds/macvlan.js';
import type { TunData } from '../links/kinds/tun.js';
import type { VethData } from '../links/kinds/veth.js';
import type { VlanData } from '../links/kinds/vlan.js';
import type { VxlanData } from '../links/kinds/vxlan.js';

/** `struct ifinfomsg` (16 bytes). */
export interface IfInfoMsg {
  /** Address family (AF_UNSPEC for links). */
  family: number;
  /** ARPHRD_* device type. */
  type: number;
  /** Interface index (0 = not given). */
  index: number;
  /** IFF_* flags. */
  flags: number;
  /** Mask of the IFF_* flags to change (requests) . */
  change: number;
}

export const IFINFOMSG_LEN = 16;

export function writeIfInfoMsg(w: Writer, h: Partial<IfInfoMsg>): void {
  w.u8(h.family ?? 0).u8(0).u16(h.type ?? 0).s32(h.index ?? 0).u32(h.flags ?? 0).u32(h.change ?? 0);
}

export function readIfInfoMsg(buf: Buffer, off = 0, end = buf.length): IfInfoMsg {
  if (end - off < IFINFOMSG_LEN) throw new CodecError(`ifinfomsg needs ${IFINFOMSG_LEN} bytes, got ${end - off}`, off);
  return {
    family: buf[off] as number,
    type: buf.readUInt16LE(off + 2),
    index: buf.readInt32LE(off + 4),
    flags: buf.readUInt32LE(off + 8),
    change: buf.readUInt32LE(off + 12),
  };
}

// --- kind-specific IFLA_INFO_DATA: one file per kind under links/kinds/ ----------------------------

export type { VethData } from '../links/kinds/veth.js';
export type { BridgeData, BridgePortData } from '../links/kinds/bridge.js';
export type { VlanData } from '../links/kinds/vlan.js';
export type { MacvlanData } from '../links/kinds/macvlan.js';
export type { VxlanData } from '../links/kinds/vxlan.js';
export type { TunData } from '../links/kinds/tun.js';

/** Kind-specific data of any other kind: all attributes raw in `other`. */
export type OtherKindData = WithOther;

/** IFLA_LINKINFO. */
export interface LinkInfoAttrs extends WithOther {
  kind?: string;
  data?: VethData | BridgeData | VlanData | MacvlanData | VxlanData | TunData | OtherKindData;
  slaveKind?: string;
  slaveData?: BridgePortData | OtherKindData;
}

/** IFLA_* attributes of a link message. */
export interface LinkAttrs extends WithOther {
  address?: string;
  broadcast?: string;
  ifname?: string;
  mtu?: number;
  link?: number;
  qdisc?: string;
  master?: number;
  txqlen?: number;
  operstate?: number;
  linkmode?: number;
  linkinfo?: LinkInfoAttrs;
  netNsPid?: number;
  ifalias?: string;
  group?: number;
  netNsFd?: number;
  extMask?: number;
  promiscuity?: number;
  numTxQueues?: number;
  numRxQueues?: number;
  carrier?: number;
  carrierChanges?: number;
  linkNetnsid?: number;
  protoDown?: number;
  gsoMaxSegs?: number;
  gsoMaxSize?: number;
  newNetnsid?: number;
  targetNetnsid?: number;
  minMtu?: number;
  maxMtu?: number;
  permAddress?: string;
  parentDevName?: string;
  allmulti?: number;
}

/** A whole link message payload. */
export interface LinkMessage {
  header: IfInfoMsg;
  attrs: LinkAttrs;
}

const emptySchema: Schema = schema('unknown', []);

/** The link message codec as the kinds see it (the veth peer nests one). */
const linkCodec: LinkMessageCodec = {
  write: (w, m) => {
    writeIfInfoMsg(w, m.header);
    encodeAttrs(w, linkSchema, m.attrs);
  },
  read: (b, off, len, lean) => decodeLinkAt(b, off, off + len, linkSchema, lean),
};

const dataSchemas = new Map<string, Schema>();

/** The schema of IFLA_INFO_DATA for `kind` (an empty one, keeping everything raw, for other kinds). */
export function kindSchema(kind: string | undefined): Schema {
  const k = kindOfInfo(kind);
  if (!k || kind === undefined) return emptySchema;
  let s = dataSchemas.get(kind);
  if (!s) dataSchemas.set(kind, (s = k.dataSchema(linkCodec)));
  return s;
}

/** The schema of IFLA_INFO_SLAVE_DATA of a port whose master is of kind `slaveKind`. */
function slaveSchema(slaveKind: string | undefined): Schema {
  return kindOfInfo(slaveKind)?.port?.schema ?? emptySchema;
}

/** IFLA_LINKINFO: the kind decides how IFLA_INFO_DATA (and the slave kind IFLA_INFO_SLAVE_DATA) is read. */
const linkInfo: ValueCodec<LinkInfoAttrs> = {
  decode: (b, off = 0, len = b.length - off, lean = false) => {
    const end = off + len;
    // the first pass only checks the list: damage keeps the whole IFLA_LINKINFO raw
    for (let at = off; end - at >= 4; ) {
      const n = b.readUInt16LE(at);
      if (n < 4 || n > end - at) return undefined;
      at += align4(n);
    }
    const out: LinkInfoAttrs = {};
    let other: RawAttr[] | undefined;
    let dataAt = -1;
    let slaveAt = -1;
    for (let at = off; end - at >= 4; ) {
      const n = b.readUInt16LE(at);
      const type = b.readUInt16LE(at + 2) & C.NLA_TYPE_MASK;
      let used = true;
      if (type === C.IFLA_INFO_KIND && out.kind === undefined) {
        const k = string.decode(b, at + 4, n - 4);
        if (k === undefined) used = false;
        else out.kind = k;
      } else if (type === C.IFLA_INFO_SLAVE_KIND && out.slaveKind === undefined) {
        const k = string.decode(b, at + 4, n - 4);
        if (k === undefined) used = false;
        else out.slaveKind = k;
      } else if (type === C.IFLA_INFO_DATA && dataAt < 0) dataAt = at;
      else if (type === C.IFLA_INFO_SLAVE_DATA && slaveAt < 0) slaveAt = at;
      else used = false;
      if (!used && !lean) (other ??= []).push(rawAttr(b, at, n));
      at += align4(n);
    }
    if (dataAt >= 0) {
      const n = b.readUInt16LE(dataAt);
      const v = decodeNested<NonNullable<LinkInfoAttrs['data']>>(kindSchema(out.kind), b, dataAt + 4, n - 4, lean);
      if (v !== undefined) out.data = v;
      else if (!lean) (other ??= []).push(rawAttr(b, dataAt, n));
    }
    if (slaveAt >= 0) {
      const n = b.readUInt16LE(slaveAt);
      const v = decodeNested<NonNullable<LinkInfoAttrs['slaveData']>>(slaveSchema(out.slaveKind), b, slaveAt + 4, n - 4, lean);
      if (v !== undefined) out.slaveData = v;
      else if (!lean) (other ??= []).push(rawAttr(b, slaveAt, n));
    }
    if (other) out.other = other;
    return out;
  },
  encode: (w, t, v) => {
    const at = w.beginNested(t, false);
    if (v.kind !== undefined) w.attrString(C.IFLA_INFO_KIND, v.kind);
    if (v.data !== undefined) {
      const d = w.beginNested(C.IFLA_INFO_DATA, false);
      encodeAttrs(w, kindSchema(v.kind), v.data);
      w.endNested(d);
    }
    if (v.slaveKind !== undefined) w.attrString(C.IFLA_INFO_SLAVE_KIND, v.slaveKind);
    if (v.slaveData !== undefined) {
      const d = w.beginNested(C.IFLA_INFO_SLAVE_DATA, false);
      encodeAttrs(w, slaveSchema(v.slaveKind), v.slaveData);
      w.endNested(d);
    }
    if (v.other) emitRawAttrs(w, v.other);
    w.endNested(at);
  },
};

/** The IFLA_* schema. */
export const linkSchema: Schema = schema('link', [
  [C.IFLA_ADDRESS, 'address', hwaddr],
  [C.IFLA_BROADCAST, 'broadcast', hwaddr],
  [C.IFLA_IFNAME, 'ifname', string],
  [C.IFLA_MTU, 'mtu', u32],
  [C.IFLA_LINK, 'link', u32],
  [C.IFLA_QDISC, 'qdisc', string],
  [C.IFLA_MASTER, 'master', u32],
  [C.IFLA_TXQLEN, 'txqlen', u32],
  [C.IFLA_OPERSTATE, 'operstate', u8],
  [C.IFLA_LINKMODE, 'linkmode', u8],
  [C.IFLA_LINKINFO, 'linkinfo', linkInfo],
  [C.IFLA_NET_NS_PID, 'netNsPid', u32],
  [C.IFLA_IFALIAS, 'ifalias', string],
  [C.IFLA_GROUP, 'group', u32],
  [C.IFLA_NET_NS_FD, 'netNsFd', u32],
  [C.IFLA_EXT_MASK, 'extMask', u32],
  [C.IFLA_PROMISCUITY, 'promiscuity', u32],
  [C.IFLA_NUM_TX_QUEUES, 'numTxQueues', u32],
  [C.IFLA_NUM_RX_QUEUES, 'numRxQueues', u32],
  [C.IFLA_CARRIER, 'carrier', u8],
  [C.IFLA_CARRIER_CHANGES, 'carrierChanges', u32],
  [C.IFLA_LINK_NETNSID, 'linkNetnsid', s32],
  [C.IFLA_PROTO_DOWN, 'protoDown', u8],
  [C.IFLA_GSO_MAX_SEGS, 'gsoMaxSegs', u32],
  [C.IFLA_GSO_MAX_SIZE, 'gsoMaxSize', u32],
  [C.IFLA_NEW_NETNSID, 'newNetnsid', s32],
  [C.IFLA_TARGET_NETNSID, 'targetNetnsid', s32],
  [C.IFLA_MIN_MTU, 'minMtu', u32],
  [C.IFLA_MAX_MTU, 'maxMtu', u32],
  [C.IFLA_PERM_ADDRESS, 'permAddress', hwaddr],
  [C.IFLA_PARENT_DEV_NAME, 'parentDevName', string],
  [C.IFLA_ALLMULTI, 'allmulti', u32],
]);

/** Encodes a link message payload (ifinfomsg + attributes). */
export function encodeLinkMessage(m: { header: Partial<IfInfoMsg>; attrs: LinkAttrs }): Buffer {
  const w = new Writer(128);
  writeIfInfoMsg(w, m.header);
  encodeAttrs(w, linkSchema, m.attrs);
  return w.finish();
}

/** Decodes a link message payload. Throws {@link CodecError} if it is truncated or malformed. */
export function decodeLinkMessage(payload: Buffer): LinkMessage {
  return decodeLinkAt(payload, 0, payload.length, linkSchema, false);
}

/**
 * The link message in `buf[off, end)` decoded with `s` (the IFLA_* schema or a {@link pick} of
 * it); `lean` leaves out what does not become a field (see {@link decodeAttrs}). Error offsets
 * count from `off`. Internal.
 */
export function decodeLinkAt(buf: Buffer, off: number, end: number, s: Schema, lean: boolean): LinkMessage {
  if (end - off < IFINFOMSG_LEN) throw new CodecError(`ifinfomsg needs ${IFINFOMSG_LEN} bytes, got ${end - off}`, 0);
  return { header: readIfInfoMsg(buf, off, end), attrs: decodeAttrs<LinkAttrs>(s, buf, off + IFINFOMSG_LEN, end, lean, off) };
}

