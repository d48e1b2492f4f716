/**
 * Dispatch on the netlink message type: decodes any rtnetlink payload the API uses.
 * @module
 */
import * as C from './constants.js';
import { decodeAddressMessage, type AddressMessage } from './address.js';
import { decodeLinkMessage, type LinkMessage } from './link.js';
import { decodeNeighborMessage, type NeighborMessage } from './neighbor.js';
import { decodeRouteMessage, type RouteMessage } from './route.js';

/** A decoded rtnetlink message, tagged by object kind and whether it is a NEW or DEL. */
export type RtnlMessage =
  | { kind: 'link'; action: 'new' | 'del'; msg: LinkMessage }
  | { kind: 'address'; action: 'new' | 'del'; msg: AddressMessage }
  | { kind: 'route'; action: 'new' | 'del'; msg: RouteMessage }
  | { kind: 'neighbor'; action: 'new' | 'del'; msg: NeighborMessage }
  | { kind: 'unknown'; type: number; payload: Buffer };

/**
 * Decodes `payload` according to the netlink message `type` (RTM_NEW*, RTM_DEL*, RTM_GET*).
 * Throws {@link CodecError} for malformed payloads; other types come back as `unknown`.
 */
export function decodeRtnlMessage(type: number, payload: Buffer): RtnlMessage {
  switch (type) {
    case C.RTM_NEWLINK:
    case C.RTM_GETLINK:
    case C.RTM_SETLINK:
    case C.RTM_DELLINK:
      return { kind: 'link', action: type === C.RTM_DELLINK ? 'del' : 'new', msg: decodeLinkMessage(payload) };
    case C.RTM_NEWADDR:
    case C.RTM_GETADDR:
    case C.RTM_DELADDR:
      return { kind: 'address', action: type === C.RTM_DELADDR ? 'del' : 'new', msg: decodeAddressMessage(payload) };
    case C.RTM_NEWROUTE:
    case C.RTM_GETROUTE:
    case C.RTM_DELROUTE:
      return { kind: 'route', action: type === C.RTM_DELROUTE ? 'del' : 'new', msg: decodeRouteMessage(payload) };
    case C.RTM_NEWNEIGH:
    case C.RTM_GETNEIGH:
    case C.RTM_DELNEIGH:
      return { kind: 'neighbor', action: type === C.RTM_DELNEIGH ? 'del' : 'new', msg: decodeNeighborMessage(payload) };
    default:
      return { kind: 'unknown', type, payload };
  }
}
