/**
 * tun/tap: made by ioctl on /dev/net/tun (see links.ts and tap.ts), never by RTM_NEWLINK; the
 * kernel reports IFLA_TUN_* in dumps. Specs say `kind: 'tap'`.
 * @module
 */
import { schema, u32, u8, type WithOther } from '../../codec/attrs.js';
import * as C from '../../codec/constants.js';
import type { TapSpec } from '../../types.js';
import { validateInt } from '../../validate.js';
import { checkBool } from '../common.js';
import type { LinkKind } from './kind.js';

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

const tunSchema = schema('tun', [
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

const NOBODY = 0xffffffff;

export const tun: LinkKind<TapSpec, TunData> = {
  name: 'tap',
  keys: ['owner', 'group', 'multiQueue', 'vnetHdr'] satisfies Array<keyof TapSpec>,
  infoKinds: ['tun'],
  dataSchema: () => tunSchema,
  validate(s) {
    if (s.owner !== undefined) validateInt(s.owner, 'owner', 0, 0xfffffffe);
    if (s.group !== undefined) validateInt(s.group, 'group', 0, 0xfffffffe);
    checkBool(s.multiQueue, 'multiQueue');
    checkBool(s.vnetHdr, 'vnetHdr');
  },
  decode: (_m, d = {}) => ({
    tun: {
      mode: d.type === C.IFF_TAP ? 'tap' : d.type === C.IFF_TUN ? 'tun' : null,
      persist: !!d.persist,
      vnetHdr: !!d.vnetHdr,
      multiQueue: !!d.multiQueue,
      pi: !!d.pi,
      owner: d.owner === undefined || d.owner === NOBODY ? null : d.owner,
      group: d.group === undefined || d.group === NOBODY ? null : d.group,
    },
  }),
};
