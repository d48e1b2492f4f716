/**
 * ifb: an intermediate functional block, a device whose egress qdisc shapes traffic redirected to
 * it (from another device's ingress). No kind data.
 * @module
 */
import { schema, type WithOther } from '../../codec/attrs.js';
import type { IfbSpec } from '../../types.js';
import type { LinkKind } from './kind.js';

const ifbSchema = schema('ifb', []);

export const ifb: LinkKind<IfbSpec, WithOther> = {
  name: 'ifb',
  infoKinds: ['ifb'],
  keys: [],
  dataSchema: () => ifbSchema,
  validate: () => undefined,
  encode: async () => ({ linkinfo: { kind: 'ifb' } }),
  decode: () => ({}),
};
