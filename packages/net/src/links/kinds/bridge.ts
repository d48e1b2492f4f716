/**
 * bridge: IFLA_BR_* settings (times in centiseconds on the wire, seconds in the API), and the
 * port data (IFLA_BRPORT_*) of the links enslaved to a bridge.
 * @module
 */
import { be16, schema, u16, u32, u8, type WithOther } from '../../codec/attrs.js';
import * as C from '../../codec/constants.js';
import type { BridgePortState, BridgeSpec } from '../../types.js';
import { validateInt } from '../../validate.js';
import { checkBool, validateSeconds } from '../common.js';
import { fromCentis, toCentis, type LinkKind } from './kind.js';

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

/** Bridge port (IFLA_BRPORT_*), the slave data of a bridge's port. */
export interface BridgePortData extends WithOther {
  state?: number;
  priority?: number;
  cost?: number;
  learning?: number;
  unicastFlood?: number;
}

const bridgeSchema = schema('bridge', [
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

const portSchema = schema('bridge_slave', [
  [C.IFLA_BRPORT_STATE, 'state', u8],
  [C.IFLA_BRPORT_PRIORITY, 'priority', u16],
  [C.IFLA_BRPORT_COST, 'cost', u32],
  [C.IFLA_BRPORT_LEARNING, 'learning', u8],
  [C.IFLA_BRPORT_UNICAST_FLOOD, 'unicastFlood', u8],
]);

const PORT_STATES: BridgePortState[] = ['disabled', 'listening', 'learning', 'forwarding', 'blocking'];

export const bridge: LinkKind<BridgeSpec, BridgeData> = {
  name: 'bridge',
  keys: ['stp', 'forwardDelay', 'helloTime', 'maxAge', 'ageingTime', 'priority', 'vlanFiltering'] satisfies Array<keyof BridgeSpec>,
  infoKinds: ['bridge'],
  dataSchema: () => bridgeSchema,
  validate(s) {
    checkBool(s.stp, 'stp');
    checkBool(s.vlanFiltering, 'vlanFiltering');
    validateSeconds(s.forwardDelay, 'forwardDelay', 30);
    validateSeconds(s.helloTime, 'helloTime', 10);
    validateSeconds(s.maxAge, 'maxAge', 40);
    validateSeconds(s.ageingTime, 'ageingTime', 1_000_000);
    if (s.priority !== undefined) validateInt(s.priority, 'priority', 0, 65535);
  },
  encode(s) {
    const d: BridgeData = {};
    if (s.forwardDelay !== undefined) d.forwardDelay = toCentis(s.forwardDelay);
    if (s.helloTime !== undefined) d.helloTime = toCentis(s.helloTime);
    if (s.maxAge !== undefined) d.maxAge = toCentis(s.maxAge);
    if (s.ageingTime !== undefined) d.ageingTime = toCentis(s.ageingTime);
    if (s.stp !== undefined) d.stpState = s.stp ? 1 : 0;
    if (s.priority !== undefined) d.priority = s.priority;
    if (s.vlanFiltering !== undefined) d.vlanFiltering = s.vlanFiltering ? 1 : 0;
    return { linkinfo: Object.keys(d).length ? { kind: 'bridge', data: d } : { kind: 'bridge' } };
  },
  decode: (_m, d = {}) => ({
    bridge: {
      stp: (d.stpState ?? 0) !== 0,
      forwardDelay: fromCentis(d.forwardDelay),
      helloTime: fromCentis(d.helloTime),
      maxAge: fromCentis(d.maxAge),
      ageingTime: fromCentis(d.ageingTime),
      priority: d.priority ?? null,
      vlanFiltering: (d.vlanFiltering ?? 0) !== 0,
    },
  }),
  port: {
    schema: portSchema,
    decode: (data) => {
      const d = (data ?? {}) as BridgePortData;
      return { bridgePort: { state: d.state === undefined ? null : (PORT_STATES[d.state] ?? null), priority: d.priority ?? null, cost: d.cost ?? null } };
    },
  },
};
