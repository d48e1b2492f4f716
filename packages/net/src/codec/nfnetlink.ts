/**
 * What every nfnetlink (NETLINK_NETFILTER) message shares: the 4-byte `struct nfgenmsg` after the
 * netlink header, the split of the message type into subsystem and message, and the big-endian
 * integer attributes netfilter uses (NLA_BE32/NLA_BE64). Pure.
 * @module
 */
import { CodecError, type ValueCodec, type Writer, onPayload } from './attrs.js';
import { NFGENMSG_LEN } from './nf-constants.js';

/** `struct nfgenmsg`: the header of every nfnetlink message. */
export interface NfGenMsg {
  /** AF_* family the message is about (AF_UNSPEC = 0 for all). */
  family: number;
  /** NFNETLINK_V0, or V1 where a request says "family matters" (the conntrack flush). */
  version: number;
  /** Resource id (big endian on the wire): the nf_tables generation in replies, else 0. */
  resId: number;
}

/** Writes a `struct nfgenmsg`. */
export function writeNfGenMsg(w: Writer, h: Partial<NfGenMsg>): void {
  w.u8(h.family ?? 0).u8(h.version ?? 0);
  const id = h.resId ?? 0;
  w.u8((id >>> 8) & 0xff).u8(id & 0xff);
}

/** Reads the `struct nfgenmsg` at the start of `payload`. */
export function readNfGenMsg(payload: Buffer): NfGenMsg {
  if (payload.length < NFGENMSG_LEN) throw new CodecError(`nfgenmsg needs ${NFGENMSG_LEN} bytes, got ${payload.length}`, 0);
  return { family: payload.readUInt8(0), version: payload.readUInt8(1), resId: payload.readUInt16BE(2) };
}

/** The subsystem (high byte) and message (low byte) of an nfnetlink message type. */
export function splitNfnlType(type: number): { subsys: number; msg: number } {
  return { subsys: (type >>> 8) & 0xff, msg: type & 0xff };
}

/** A big-endian u32 (NLA_BE32, e.g. CTA_STATUS, CTA_MARK, NFTA_GEN_ID). */
export const be32: ValueCodec<number> = {
  decode: onPayload((d) => (d.length === 4 ? d.readUInt32BE(0) : undefined)),
  encode: (w, t, v) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0, 0);
    w.attr(t, b);
  },
};

/** A big-endian u64 (NLA_BE64, e.g. the conntrack counters). */
export const be64: ValueCodec<bigint> = {
  decode: onPayload((d) => (d.length === 8 ? d.readBigUInt64BE(0) : undefined)),
  encode: (w, t, v) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt.asUintN(64, v), 0);
    w.attr(t, b);
  },
};
