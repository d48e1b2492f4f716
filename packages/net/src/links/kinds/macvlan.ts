/**
 * macvlan (and macvtap, read alike): a MAC-addressed child of a parent link (IFLA_LINK), IFLA_MACVLAN_*.
 * @module
 */
import { schema, u16, u32, type WithOther } from '../../codec/attrs.js';
import * as C from '../../codec/constants.js';
import { ValidationError } from '../../errors.js';
import type { MacvlanMode, MacvlanSpec } from '../../types.js';
import { validateIfName } from '../../validate.js';
import type { LinkKind } from './kind.js';

/** macvlan: IFLA_MACVLAN_*. */
export interface MacvlanData extends WithOther {
  mode?: number;
  flags?: number;
}

const MODES: Record<MacvlanMode, number> = {
  private: C.MACVLAN_MODE_PRIVATE,
  vepa: C.MACVLAN_MODE_VEPA,
  bridge: C.MACVLAN_MODE_BRIDGE,
  passthru: C.MACVLAN_MODE_PASSTHRU,
  source: C.MACVLAN_MODE_SOURCE,
};

const macvlanSchema = schema('macvlan', [
  [C.IFLA_MACVLAN_MODE, 'mode', u32],
  [C.IFLA_MACVLAN_FLAGS, 'flags', u16],
]);

export const macvlan: LinkKind<MacvlanSpec, MacvlanData> = {
  name: 'macvlan',
  keys: ['link', 'mode'] satisfies Array<keyof MacvlanSpec>,
  infoKinds: ['macvlan', 'macvtap'],
  dataSchema: () => macvlanSchema,
  validate(s) {
    validateIfName(s.link, 'link');
    if (s.mode !== undefined && !Object.hasOwn(MODES, s.mode)) {
      throw new ValidationError('mode', s.mode, `expected one of ${Object.keys(MODES).join(', ')}`);
    }
  },
  async encode(s, ctx) {
    return { linkinfo: { kind: 'macvlan', data: { mode: MODES[s.mode ?? 'bridge'] } }, attrs: { link: await ctx.index(s.link, 'link') } };
  },
  decode: (_m, d = {}) => ({ macvlan: { mode: (Object.keys(MODES) as MacvlanMode[]).find((k) => MODES[k] === d.mode) ?? null } }),
};
