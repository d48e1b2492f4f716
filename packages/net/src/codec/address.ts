/**
 * Address messages (RTM_NEWADDR/DELADDR/GETADDR): `struct ifaddrmsg` followed by IFA_* attributes.
 * @module
 */
import * as C from './constants.js';
import { CodecError, decodeAttrs, encodeAttrs, in4, ip, s32, schema, string, structU32, u32, u8, Writer, type Schema, type WithOther } from './attrs.js';

/** `struct ifaddrmsg` (8 bytes). */
export interface IfAddrMsg {
  family: number;
  prefixLength: number;
  /** IFA_F_* (the low 8 bits; IFA_FLAGS carries all 32). */
  flags: number;
  /** RT_SCOPE_*. */
  scope: number;
  index: number;
}

export const IFADDRMSG_LEN = 8;

/** IFA_CACHEINFO (seconds; 0xffffffff = forever). */
export interface IfaCacheInfo {
  preferred: number;
  valid: number;
  cstamp: number;
  tstamp: number;
}

/** IFA_* attributes. */
export interface AddressAttrs extends WithOther {
  address?: string;
  local?: string;
  label?: string;
  broadcast?: string;
  anycast?: string;
  cacheinfo?: IfaCacheInfo;
  multicast?: string;
  flags?: number;
  rtPriority?: number;
  targetNetnsid?: number;
  proto?: number;
}

/** The payload of an RTM_*ADDR message (an address): its `ifaddrmsg` header and its IFA_* attributes. */
export interface AddressMessage {
  /** The fixed `ifaddrmsg` header. */
  header: IfAddrMsg;
  /** The attributes, by name; those the schema does not know are kept in `other`. */
  attrs: AddressAttrs;
}

export const addressSchema: Schema = schema('address', [
  [C.IFA_ADDRESS, 'address', ip],
  [C.IFA_LOCAL, 'local', ip],
  [C.IFA_LABEL, 'label', string],
  [C.IFA_BROADCAST, 'broadcast', in4],
  [C.IFA_ANYCAST, 'anycast', ip],
  [C.IFA_CACHEINFO, 'cacheinfo', structU32(['preferred', 'valid', 'cstamp', 'tstamp'] as const)],
  [C.IFA_MULTICAST, 'multicast', ip],
  [C.IFA_FLAGS, 'flags', u32],
  [C.IFA_RT_PRIORITY, 'rtPriority', u32],
  [C.IFA_TARGET_NETNSID, 'targetNetnsid', s32],
  [C.IFA_PROTO, 'proto', u8],
]);

/** Encodes an address's message payload (ifaddrmsg + attributes); header fields left out are 0. */
export function encodeAddressMessage(m: { header: Partial<IfAddrMsg>; attrs: AddressAttrs }): Buffer {
  const w = new Writer(64);
  const h = m.header;
  w.u8(h.family ?? 0).u8(h.prefixLength ?? 0).u8(h.flags ?? 0).u8(h.scope ?? 0).u32(h.index ?? 0);
  encodeAttrs(w, addressSchema, m.attrs);
  return w.finish();
}

/** Decodes an address's message payload. Throws {@link CodecError} if it is truncated or malformed. */
export function decodeAddressMessage(payload: Buffer): AddressMessage {
  return decodeAddressAt(payload, addressSchema, false);
}

/** Decodes `payload` with `s` (the IFA_* schema or a pick of it), lean or not (see decodeAttrs). Internal. */
export function decodeAddressAt(payload: Buffer, s: Schema, lean: boolean): AddressMessage {
  if (payload.length < IFADDRMSG_LEN) throw new CodecError(`ifaddrmsg needs ${IFADDRMSG_LEN} bytes, got ${payload.length}`, 0);
  return {
    header: {
      family: payload[0] as number,
      prefixLength: payload[1] as number,
      flags: payload[2] as number,
      scope: payload[3] as number,
      index: payload.readUInt32LE(4),
    },
    attrs: decodeAttrs<AddressAttrs>(s, payload, IFADDRMSG_LEN, payload.length, lean),
  };
}
