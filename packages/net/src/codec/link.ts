/**
 * Link messages (RTM_NEWLINK/DELLINK/GETLINK/SETLINK): `struct ifinfomsg` followed by IFLA_*
 * attributes, with IFLA_LINKINFO decoded per kind (veth, bridge, vlan, macvlan, vxlan, tun) and
 * bridge-port slave data. Unknown attributes are kept in `other`.
 * @module
 */
import * as C from './constants.js';
import {
  be16, CodecError, decodeAttrs, emitRawAttrs, encodeAttrs, hwaddr, in4, in6, nested, parseAttrs, s32, schema, string, u16, u32, u8,
  Writer, type RawAttr, type Schema, type ValueCodec, type WithOther,
} from './attrs.js';

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

// --- kind-specific IFLA_INFO_DATA --------------------------------------------------------------

/** veth: IFLA_INFO_DATA (only in requests: the peer's ifinfomsg and attributes). */
export interface VethData extends WithOther {
  peer?: LinkMessage;
}

/** bridge: IFLA_BR_* (times in centiseconds, as the kernel has them). */
export interface BridgeData extends WithOther {
  forwardDelay?: number;
  helloTime?: number;
  maxAge?: number;
  ageingTime?: number;
  /** 0 off, 1 kernel STP, 2 user-space STP. */
  stpState?: number;
  priority?: number;
  vlanFiltering?: number;
  /** EtherType, e.g. 0x8100. */
  vlanProtocol?: number;
  groupFwdMask?: number;
  vlanDefaultPvid?: number;
}

/** VLAN: IFLA_VLAN_*. */
export interface VlanData extends WithOther {
  id?: number;
  flags?: { flags: number; mask: number };
  /** EtherType 0x8100 (802.1Q) or 0x88a8 (802.1ad). */
  protocol?: number;
}

/** macvlan: IFLA_MACVLAN_*. */
export interface MacvlanData extends WithOther {
  mode?: number;
  flags?: number;
}

/** VXLAN: IFLA_VXLAN_*. */
export interface VxlanData extends WithOther {
  id?: number;
  group?: string;
  link?: number;
  local?: string;
  ttl?: number;
  tos?: number;
  learning?: number;
  ageing?: number;
  limit?: number;
  portRange?: { low: number; high: number };
  proxy?: number;
  rsc?: number;
  l2miss?: number;
  l3miss?: number;
  port?: number;
  group6?: string;
  local6?: string;
  udpCsum?: number;
}

/** tun/tap: IFLA_TUN_* (dumps only: TAPs are created by ioctl). */
export interface TunData extends WithOther {
  owner?: number;
  group?: number;
  /** IFF_TUN (1) or IFF_TAP (2). */
  type?: number;
  pi?: number;
  vnetHdr?: number;
  persist?: number;
  multiQueue?: number;
  numQueues?: number;
  numDisabledQueues?: number;
}

/** Bridge port (IFLA_BRPORT_*), the slave data of a bridge's port. */
export interface BridgePortData extends WithOther {
  state?: number;
  priority?: number;
  cost?: number;
  learning?: number;
  unicastFlood?: number;
}

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

const portRange: ValueCodec<{ low: number; high: number }> = {
  decode: (d) => (d.length === 4 ? { low: d.readUInt16BE(0), high: d.readUInt16BE(2) } : undefined),
  encode: (w, t, v) => {
    const b = Buffer.alloc(4);
    b.writeUInt16BE(v.low, 0);
    b.writeUInt16BE(v.high, 2);
    w.attr(t, b);
  },
};

const vlanFlags: ValueCodec<{ flags: number; mask: number }> = {
  decode: (d) => (d.length === 8 ? { flags: d.readUInt32LE(0), mask: d.readUInt32LE(4) } : undefined),
  encode: (w, t, v) => {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(v.flags >>> 0, 0);
    b.writeUInt32LE(v.mask >>> 0, 4);
    w.attr(t, b);
  },
};

/** The veth peer: an ifinfomsg followed by IFLA_* attributes, nested in VETH_INFO_PEER. */
const vethPeer: ValueCodec<LinkMessage> = {
  decode: (d) => {
    try {
      return decodeLinkMessage(d);
    } catch (err) {
      if (err instanceof CodecError) return undefined;
      throw err;
    }
  },
  encode: (w, t, v) => {
    const at = w.beginNested(t, false);
    writeIfInfoMsg(w, v.header);
    encodeAttrs(w, linkSchema, v.attrs);
    w.endNested(at);
  },
};

export const vethSchema: Schema = schema('veth', [[C.VETH_INFO_PEER, 'peer', vethPeer]]);

export const bridgeSchema: Schema = schema('bridge', [
  [C.IFLA_BR_FORWARD_DELAY, 'forwardDelay', u32],
  [C.IFLA_BR_HELLO_TIME, 'helloTime', u32],
  [C.IFLA_BR_MAX_AGE, 'maxAge', u32],
  [C.IFLA_BR_AGEING_TIME, 'ageingTime', u32],
  [C.IFLA_BR_STP_STATE, 'stpState', u32],
  [C.IFLA_BR_PRIORITY, 'priority', u16],
  [C.IFLA_BR_VLAN_FILTERING, 'vlanFiltering', u8],
  [C.IFLA_BR_VLAN_PROTOCOL, 'vlanProtocol', be16],
  [C.IFLA_BR_GROUP_FWD_MASK, 'groupFwdMask', u16],
  [C.IFLA_BR_VLAN_DEFAULT_PVID, 'vlanDefaultPvid', u16],
]);

export const vlanSchema: Schema = schema('vlan', [
  [C.IFLA_VLAN_ID, 'id', u16],
  [C.IFLA_VLAN_FLAGS, 'flags', vlanFlags],
  [C.IFLA_VLAN_PROTOCOL, 'protocol', be16],
]);

export const macvlanSchema: Schema = schema('macvlan', [
  [C.IFLA_MACVLAN_MODE, 'mode', u32],
  [C.IFLA_MACVLAN_FLAGS, 'flags', u16],
]);

export const vxlanSchema: Schema = schema('vxlan', [
  [C.IFLA_VXLAN_ID, 'id', u32],
  [C.IFLA_VXLAN_GROUP, 'group', in4],
  [C.IFLA_VXLAN_LINK, 'link', u32],
  [C.IFLA_VXLAN_LOCAL, 'local', in4],
  [C.IFLA_VXLAN_TTL, 'ttl', u8],
  [C.IFLA_VXLAN_TOS, 'tos', u8],
  [C.IFLA_VXLAN_LEARNING, 'learning', u8],
  [C.IFLA_VXLAN_AGEING, 'ageing', u32],
  [C.IFLA_VXLAN_LIMIT, 'limit', u32],
  [C.IFLA_VXLAN_PORT_RANGE, 'portRange', portRange],
  [C.IFLA_VXLAN_PROXY, 'proxy', u8],
  [C.IFLA_VXLAN_RSC, 'rsc', u8],
  [C.IFLA_VXLAN_L2MISS, 'l2miss', u8],
  [C.IFLA_VXLAN_L3MISS, 'l3miss', u8],
  [C.IFLA_VXLAN_PORT, 'port', be16],
  [C.IFLA_VXLAN_GROUP6, 'group6', in6],
  [C.IFLA_VXLAN_LOCAL6, 'local6', in6],
  [C.IFLA_VXLAN_UDP_CSUM, 'udpCsum', u8],
]);

export const tunSchema: Schema = schema('tun', [
  [C.IFLA_TUN_OWNER, 'owner', u32],
  [C.IFLA_TUN_GROUP, 'group', u32],
  [C.IFLA_TUN_TYPE, 'type', u8],
  [C.IFLA_TUN_PI, 'pi', u8],
  [C.IFLA_TUN_VNET_HDR, 'vnetHdr', u8],
  [C.IFLA_TUN_PERSIST, 'persist', u8],
  [C.IFLA_TUN_MULTI_QUEUE, 'multiQueue', u8],
  [C.IFLA_TUN_NUM_QUEUES, 'numQueues', u32],
  [C.IFLA_TUN_NUM_DISABLED_QUEUES, 'numDisabledQueues', u32],
]);

export const bridgePortSchema: Schema = schema('bridge_slave', [
  [C.IFLA_BRPORT_STATE, 'state', u8],
  [C.IFLA_BRPORT_PRIORITY, 'priority', u16],
  [C.IFLA_BRPORT_COST, 'cost', u32],
  [C.IFLA_BRPORT_LEARNING, 'learning', u8],
  [C.IFLA_BRPORT_UNICAST_FLOOD, 'unicastFlood', u8],
]);

const emptySchema: Schema = schema('unknown', []);

const kindSchemas: Record<string, Schema> = {
  veth: vethSchema,
  bridge: bridgeSchema,
  vlan: vlanSchema,
  macvlan: macvlanSchema,
  macvtap: macvlanSchema,
  vxlan: vxlanSchema,
  tun: tunSchema,
};

const slaveSchemas: Record<string, Schema> = { bridge: bridgePortSchema };

/** The schema of IFLA_INFO_DATA for `kind` (an empty one, keeping everything raw, for other kinds). */
export function kindSchema(kind: string | undefined): Schema {
  return (kind !== undefined && Object.prototype.hasOwnProperty.call(kindSchemas, kind) ? kindSchemas[kind] : undefined) ?? emptySchema;
}

function slaveSchema(kind: string | undefined): Schema {
  return (kind !== undefined && Object.prototype.hasOwnProperty.call(slaveSchemas, kind) ? slaveSchemas[kind] : undefined) ?? emptySchema;
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

