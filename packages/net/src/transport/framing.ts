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

