/**
 * vxlan: a VXLAN tunnel endpoint, IFLA_VXLAN_* (unicast remote or multicast group, IPv4 or IPv6).
 * @module
 */
import { be16, in4, in6, schema, u32, u8, type ValueCodec, type WithOther } from '../../codec/attrs.js';
import * as C from '../../codec/constants.js';
import { ValidationError } from '../../errors.js';
import { parseAddress } from '../../ip/address.js';
import type { VxlanSpec } from '../../types.js';
import { validateIfName, validateInt, validateIp } from '../../validate.js';
import { checkBool } from '../common.js';
import type { LinkKind } from './kind.js';

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

const portRange: ValueCodec<{ low: number; high: number }> = {
  decode: (b, off = 0, len = b.length - off) => (len === 4 ? { low: b.readUInt16BE(off), high: b.readUInt16BE(off + 2) } : undefined),
  encode: (w, t, v) => {
    const b = Buffer.alloc(4);
    b.writeUInt16BE(v.low, 0);
    b.writeUInt16BE(v.high, 2);
    w.attr(t, b);
  },
};

const vxlanSchema = schema('vxlan', [
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

/** IANA's VXLAN port, the default destination port. */
const VXLAN_PORT = 4789;

function isMulticast(addr: string): boolean {
  const b = parseAddress(addr);
  return b.length === 4 ? b[0]! >= 224 && b[0]! <= 239 : b[0] === 0xff;
}

export const vxlan: LinkKind<VxlanSpec, VxlanData> = {
  name: 'vxlan',
  keys: ['vni', 'remote', 'group', 'local', 'dev', 'port', 'ttl', 'learning'] satisfies Array<keyof VxlanSpec>,
  infoKinds: ['vxlan'],
  dataSchema: () => vxlanSchema,
  validate(s) {
    validateInt(s.vni, 'vni', 0, 0xffffff);
    if (s.remote !== undefined && s.group !== undefined) throw new ValidationError('group', s.group, 'give remote or group, not both');
    let fam: 4 | 6 | undefined;
    if (s.remote !== undefined) fam = validateIp(s.remote, 'remote');
    if (s.group !== undefined) {
      fam = validateIp(s.group, 'group');
      if (!isMulticast(s.group)) throw new ValidationError('group', s.group, 'expected a multicast address');
      if (s.dev === undefined) throw new ValidationError('dev', s.dev, 'a multicast group needs dev');
    }
    if (s.local !== undefined) {
      const lf = validateIp(s.local, 'local');
      if (fam !== undefined && lf !== fam) throw new ValidationError('local', s.local, `must be IPv${fam} like the remote`);
    }
    if (s.dev !== undefined) validateIfName(s.dev, 'dev');
    if (s.port !== undefined) validateInt(s.port, 'port', 1, 65535);
    if (s.ttl !== undefined) validateInt(s.ttl, 'ttl', 0, 255);
    checkBool(s.learning, 'learning');
  },
  async encode(s, ctx) {
    const d: VxlanData = { id: s.vni, port: s.port ?? VXLAN_PORT };
    const remote = s.remote ?? s.group;
    if (remote !== undefined) {
      if (parseAddress(remote).length === 16) d.group6 = remote;
      else d.group = remote;
    }
    if (s.local !== undefined) {
      if (parseAddress(s.local).length === 16) d.local6 = s.local;
      else d.local = s.local;
    }
    if (s.dev !== undefined) d.link = await ctx.index(s.dev, 'dev');
    if (s.ttl !== undefined) d.ttl = s.ttl;
    if (s.learning !== undefined) d.learning = s.learning ? 1 : 0;
    return { linkinfo: { kind: 'vxlan', data: d } };
  },
  decode: (_m, d = {}) => ({
    vxlan: {
      vni: d.id ?? null,
      remote: d.group ?? d.group6 ?? null,
      local: d.local ?? d.local6 ?? null,
      port: d.port ?? null,
      ttl: d.ttl ?? null,
      learning: d.learning === undefined ? null : d.learning !== 0,
      devIndex: d.link ? d.link : null,
    },
  }),
};
