/**
 * Link messages (RTM_NEWLINK/DELLINK/GETLINK/SETLINK): `struct ifinfomsg` followed by IFLA_*
 * attributes, with IFLA_LINKINFO decoded per kind (veth, bridge, vlan, macvlan, vxlan, tun) and
 * bridge-port slave data. Unknown attributes are kept in `other`.
 * @module
 */
import * as C from './constants.js';
import {
  CodecError, decodeAttrs, emitRawAttrs, encodeAttrs, hwaddr, nested, parseAttrs, s32, schema, string, u32, u8,
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

export function readIfInfoMsg(buf: Buffer, off = 0): IfInfoMsg {
  if (buf.length - off < IFINFOMSG_LEN) throw new CodecError(`ifinfomsg needs ${IFINFOMSG_LEN} bytes, got ${buf.length - off}`, off);
  return {
    family: buf.readUInt8(off),
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
  read: (d) => decodeLinkMessage(d),
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
  decode: (d) => {
    let attrs: RawAttr[];
    try {
      attrs = parseAttrs(d);
    } catch (err) {
      if (err instanceof CodecError) return undefined;
      throw err;
    }
    const out: LinkInfoAttrs = {};
    const other: RawAttr[] = [];
    let dataAttr: RawAttr | undefined;
    let slaveAttr: RawAttr | undefined;
    for (const a of attrs) {
      if (a.type === C.IFLA_INFO_KIND && out.kind === undefined) {
        const k = string.decode(a.data);
        if (k === undefined) other.push(a);
        else out.kind = k;
      } else if (a.type === C.IFLA_INFO_SLAVE_KIND && out.slaveKind === undefined) {
        const k = string.decode(a.data);
        if (k === undefined) other.push(a);
        else out.slaveKind = k;
      } else if (a.type === C.IFLA_INFO_DATA && !dataAttr) dataAttr = a;
      else if (a.type === C.IFLA_INFO_SLAVE_DATA && !slaveAttr) slaveAttr = a;
      else other.push(a);
    }
    if (dataAttr) {
      const v = nested(kindSchema(out.kind)).decode(dataAttr.data);
      if (v === undefined) other.push(dataAttr);
      else out.data = v;
    }
    if (slaveAttr) {
      const v = nested(slaveSchema(out.slaveKind)).decode(slaveAttr.data);
      if (v === undefined) other.push(slaveAttr);
      else out.slaveData = v;
    }
    if (other.length) out.other = other;
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
  return { header: readIfInfoMsg(payload), attrs: decodeAttrs<LinkAttrs>(linkSchema, payload, IFINFOMSG_LEN) };
}

