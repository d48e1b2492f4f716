/**
 * vlan: an 802.1Q / 802.1ad VLAN on a parent link (IFLA_LINK), IFLA_VLAN_*.
 * @module
 */
import { be16, schema, u16, type ValueCodec, type WithOther } from '../../codec/attrs.js';
import * as C from '../../codec/constants.js';
import { ValidationError } from '../../errors.js';
import type { VlanSpec } from '../../types.js';
import { validateIfName, validateInt } from '../../validate.js';
import type { LinkKind } from './kind.js';

/** VLAN: IFLA_VLAN_*. */
export interface VlanData extends WithOther {
  id?: number;
  flags?: { flags: number; mask: number };
  /** EtherType 0x8100 (802.1Q) or 0x88a8 (802.1ad). */
  protocol?: number;
}

const vlanFlags: ValueCodec<{ flags: number; mask: number }> = {
  decode: (b, off = 0, len = b.length - off) => (len === 8 ? { flags: b.readUInt32LE(off), mask: b.readUInt32LE(off + 4) } : undefined),
  encode: (w, t, v) => {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(v.flags >>> 0, 0);
    b.writeUInt32LE(v.mask >>> 0, 4);
    w.attr(t, b);
  },
};

const vlanSchema = schema('vlan', [
  [C.IFLA_VLAN_ID, 'id', u16],
  [C.IFLA_VLAN_FLAGS, 'flags', vlanFlags],
  [C.IFLA_VLAN_PROTOCOL, 'protocol', be16],
]);

export const vlan: LinkKind<VlanSpec, VlanData> = {
  name: 'vlan',
  keys: ['link', 'id', 'protocol'] satisfies Array<keyof VlanSpec>,
  infoKinds: ['vlan'],
  dataSchema: () => vlanSchema,
  validate(s) {
    validateIfName(s.link, 'link');
    validateInt(s.id, 'id', 1, 4094);
    if (s.protocol !== undefined && s.protocol !== '802.1Q' && s.protocol !== '802.1ad') {
      throw new ValidationError('protocol', s.protocol, "expected '802.1Q' or '802.1ad'");
    }
  },
  async encode(s, ctx) {
    const d: VlanData = { id: s.id };
    if (s.protocol !== undefined) d.protocol = s.protocol === '802.1ad' ? C.ETH_P_8021AD : C.ETH_P_8021Q;
    return { linkinfo: { kind: 'vlan', data: d }, attrs: { link: await ctx.index(s.link, 'link') } };
  },
  decode: (_m, d = {}) => ({
    vlan: { id: d.id ?? null, protocol: d.protocol === C.ETH_P_8021AD ? '802.1ad' : d.protocol === C.ETH_P_8021Q ? '802.1Q' : null },
  }),
};
