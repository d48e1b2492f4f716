/**
 * Reading the messages of a received datagram in place: its framing checked once (as
 * `decodeNlMsgs` checks it), then walked without a message object per message. Internal (not
 * re-exported): the socket and `decodeNlMsgs` use it.
 * @module
 */
import { NetlinkDecodeError } from './errors.js';
import type { NlMsg } from './message.js';

/** Size of `struct nlmsghdr` (message.ts has the public constant; no runtime import cycle). */
const HDRLEN = 16;
/** NLM_F_ACK_TLVS (message.ts has the public constant). */
const ACK_TLVS = 0x200;

/** NLMSG_ALIGN, safe for the whole u32 range. */
const align4 = (n: number): number => n + ((4 - (n % 4)) % 4);

/**
 * Checks the framing of a datagram as {@link decodeNlMsgs} does (the same errors) without making
 * message objects; {@link nextNlMsg} and {@link nlMsgAt} then read it in place. Internal.
 */
export function checkNlMsgs(buf: Buffer): void {
  let off = 0;
  while (off < buf.length) {
    const left = buf.length - off;
    if (left < HDRLEN) throw new NetlinkDecodeError(`${left} trailing bytes, shorter than a header`, off);
    const len = buf.readUInt32LE(off);
    if (len < HDRLEN) throw new NetlinkDecodeError(`nlmsg_len ${len} is shorter than the header`, off);
    if (len > left) throw new NetlinkDecodeError(`nlmsg_len ${len} runs past the datagram (${left} bytes left)`, off);
    off += Math.min(align4(len), left);
  }
}

/** Where the message after the one at `off` of a checked datagram starts (its length if none). Internal. */
export function nextNlMsg(buf: Buffer, off: number): number {
  return off + Math.min(align4(buf.readUInt32LE(off)), buf.length - off);
}

/** The message at `off` of a checked datagram, its payload a view into `buf`. Internal. */
export function nlMsgAt(buf: Buffer, off: number): NlMsg {
  return {
    type: buf.readUInt16LE(off + 4),
    flags: buf.readUInt16LE(off + 6),
    seq: buf.readUInt32LE(off + 8),
    pid: buf.readUInt32LE(off + 12),
    payload: buf.subarray(off + HDRLEN, off + buf.readUInt32LE(off)),
  };
}

/**
 * Whether the NLMSG_ERROR message at `off` of a checked datagram is a plain positive ack: error 0,
 * no extended-ack TLVs, and a body of the error field alone or with the request's header (and
 * more). Exactly the acks `parseNlmsgerr` accepts and answers with error 0 and nothing else, read
 * in place without its objects; any other one is for `parseNlmsgerr`. Internal.
 */
export function isPlainAckAt(buf: Buffer, off: number): boolean {
  const len = buf.readUInt32LE(off) - HDRLEN;
  return !(buf.readUInt16LE(off + 6) & ACK_TLVS) && (len === 4 || len >= 4 + HDRLEN) && buf.readInt32LE(off + HDRLEN) === 0;
}
