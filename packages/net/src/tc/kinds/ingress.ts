/**
 * ingress: the qdisc where filters on received traffic attach (parent ffff:fff1, handle ffff:).
 * Requests carry no TCA_OPTIONS; the kernel dumps an empty one.
 * @module
 */
import { nested, schema, type WithOther } from '../../codec/attrs.js';
import * as T from '../../codec/tc-constants.js';
import type { TcKind } from './kind.js';

/** ingress: TCA_OPTIONS (no attributes of its own). */
export type IngressOptions = WithOther;

export const ingress: TcKind<IngressOptions> = {
  kinds: ['ingress'],
  options: nested<IngressOptions>(schema('ingress', []), false),
  qdisc: {
    validate: () => undefined,
    encode: () => undefined, // tc sends no TCA_OPTIONS for it
    decode: () => ({}),
    placement: { parent: T.TC_H_INGRESS, handle: 0xffff0000 },
  },
};
