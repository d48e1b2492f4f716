/**
 * Netlink framing (linux/netlink.h): the 16-byte `nlmsghdr`, several messages per datagram,
 * 4-byte alignment, and the kernel's error/ack message (`nlmsgerr`) with its extended-ack TLVs.
 * Pure: no I/O. Decoding never throws anything but {@link NetlinkDecodeError}.
 * @module
 */
import { ValidationError } from '../errors.js';
import { NetlinkDecodeError } from './errors.js';
import { checkNlMsgs, nextNlMsg, nlMsgAt } from './framing.js';

/* eslint-disable @typescript-eslint/naming-convention */

// nlmsghdr.nlmsg_flags, common to every request.
/** It is a request message. */
export const NLM_F_REQUEST = 0x01;
/** Multipart message, terminated by NLMSG_DONE. */
export const NLM_F_MULTI = 0x02;
/** Reply with an acknowledgement, on success too. */
export const NLM_F_ACK = 0x04;
/** Echo this request (to the sender). */
export const NLM_F_ECHO = 0x08;
/** The dump was inconsistent because the data changed while it ran. */
export const NLM_F_DUMP_INTR = 0x10;
/** The dump was filtered as requested. */
export const NLM_F_DUMP_FILTERED = 0x20;
// Modifiers of GET requests.
/** Return the complete table instead of a single entry. */
export const NLM_F_ROOT = 0x100;
/** Return all entries matching the criteria passed in the message content. */
export const NLM_F_MATCH = 0x200;
/** Return a list of all matching objects atomically (unsupported). */
export const NLM_F_ATOMIC = 0x400;
/** `NLM_F_ROOT | NLM_F_MATCH`: a dump. */
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
// Modifiers of NEW requests.
/** Replace an existing matching object. */
export const NLM_F_REPLACE = 0x100;
/** Do not touch an object if it already exists. */
export const NLM_F_EXCL = 0x200;
/** Create the object if it does not exist. */
export const NLM_F_CREATE = 0x400;
/** Add to the end of the object list. */
export const NLM_F_APPEND = 0x800;
// Flags of acknowledgements (NLMSG_ERROR).
/** The request's payload was left out of the error message (NETLINK_CAP_ACK). */
export const NLM_F_CAPPED = 0x100;
/** Extended-ack TLVs follow (NETLINK_EXT_ACK). */
export const NLM_F_ACK_TLVS = 0x200;

// Control message types.
/** Nothing; to be ignored. */
export const NLMSG_NOOP = 0x1;
/** Error or acknowledgement (`struct nlmsgerr`). */
export const NLMSG_ERROR = 0x2;
/** End of a multipart message (dump). */
export const NLMSG_DONE = 0x3;
/** Data lost. */
export const NLMSG_OVERRUN = 0x4;
/** Types below this are control messages. */
export const NLMSG_MIN_TYPE = 0x10;

/** Size of `struct nlmsghdr`. */
export const NLMSG_HDRLEN = 16;

// Extended-ack attributes (enum nlmsgerr_attrs of linux/netlink.h).
/** Extended ack: the kernel's human-readable message (string). */
export const NLMSGERR_ATTR_MSG = 1;
/** Extended ack: byte offset of the offending attribute in the request (u32). */
export const NLMSGERR_ATTR_OFFS = 2;
/** Extended ack: an opaque cookie (binary). */
export const NLMSGERR_ATTR_COOKIE = 3;
/** Extended ack: the policy of the rejected attribute (nested). */
export const NLMSGERR_ATTR_POLICY = 4;
/** Extended ack: the type of a missing required attribute (u32). */
export const NLMSGERR_ATTR_MISS_TYPE = 5;
/** Extended ack: the offset of the nest that lacks it (u32). */
export const NLMSGERR_ATTR_MISS_NEST = 6;

/** Netlink protocol number of rtnetlink (socket(AF_NETLINK, SOCK_RAW, protocol)). */
export const NETLINK_ROUTE = 0;
/** Netlink protocol number of generic netlink. */
export const NETLINK_GENERIC = 16;

/** One netlink message. `payload` is everything after the 16-byte header (without trailing padding). */
export interface NlMsg {
  /** `nlmsg_type`: NLMSG_* or a protocol message type such as RTM_NEWLINK. */
  type: number;
  /** `nlmsg_flags`: NLM_F_*. */
  flags: number;
  /** `nlmsg_seq`. */
  seq: number;
  /** `nlmsg_pid`: the sending port (0 = the kernel). */
  pid: number;
  /** The message body after the header. */
  payload: Buffer;
}

/** What an acknowledgement or error message says. */
export interface Nlmsgerr {
  /** 0 for a positive acknowledgement, otherwise a positive errno number. */
  error: number;
  /** The header of the request this answers (sequence number included), when present. */
  request?: { len: number; type: number; flags: number; seq: number; pid: number };
  /** The kernel's extended acknowledgement (NETLINK_EXT_ACK), when it sent one. */
  extack?: Extack;
}

/** Extended acknowledgement TLVs. */
export interface Extack {
  /** NLMSGERR_ATTR_MSG: human-readable message, e.g. "Unknown device type". */
  message?: string;
  /** NLMSGERR_ATTR_OFFS: byte offset of the offending attribute in the request (from its nlmsghdr). */
  offset?: number;
  /** NLMSGERR_ATTR_MISS_TYPE: type of a missing required attribute. */
  missingType?: number;
  /** NLMSGERR_ATTR_MISS_NEST: offset of the nest that lacks it. */
  missingNest?: number;
  /** NLMSGERR_ATTR_COOKIE: opaque cookie. */
  cookie?: Buffer;
}

/** NLMSG_ALIGN, safe for the whole u32 range (bitwise ops would wrap above 2^31). */
const align4 = (n: number): number => n + ((4 - (n % 4)) % 4);

function checkUint(field: string, v: unknown, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw new ValidationError(field, v, `expected an integer 0..${max}`);
  }
  return v;
}

/**
 * Encodes one message: header plus payload, padded to a multiple of 4 bytes. `nlmsg_len` counts
 * the header and the payload but not the padding, as the kernel does.
 * @throws {ValidationError} when a header field is out of range or the payload is not a Buffer.
 */
export function encodeNlMsg(msg: { type: number; flags: number; seq: number; pid?: number; payload: Buffer }): Buffer {
  const type = checkUint('type', msg.type, 0xffff);
  const flags = checkUint('flags', msg.flags, 0xffff);
  const seq = checkUint('seq', msg.seq, 0xffffffff);
  const pid = checkUint('pid', msg.pid ?? 0, 0xffffffff);
  if (!Buffer.isBuffer(msg.payload)) throw new ValidationError('payload', msg.payload, 'expected a Buffer');
  const len = NLMSG_HDRLEN + msg.payload.length;
  if (len > 0xffffffff) throw new ValidationError('payload', `${msg.payload.length} bytes`, 'too long for nlmsg_len');
  const out = Buffer.alloc(align4(len));
  writeHeader(out, 0, len, type, flags, seq, pid);
  msg.payload.copy(out, NLMSG_HDRLEN);
  return out;
}

/** Writes a header at `off` (no validation; internal). */
export function writeHeader(buf: Buffer, off: number, len: number, type: number, flags: number, seq: number, pid: number): void {
  buf.writeUInt32LE(len, off);
  buf.writeUInt16LE(type, off + 4);
  buf.writeUInt16LE(flags, off + 6);
  buf.writeUInt32LE(seq >>> 0, off + 8);
  buf.writeUInt32LE(pid >>> 0, off + 12);
}

/**
 * Splits one datagram into its messages (NLMSG_OK/NLMSG_NEXT). Payloads are views into `buf`.
 * The last message may lack its alignment padding.
 * @throws {NetlinkDecodeError} on a header shorter than 16 bytes, a length beyond the datagram or
 *   trailing bytes that do not form a header.
 */
export function decodeNlMsgs(buf: Buffer): NlMsg[] {
  if (!Buffer.isBuffer(buf)) throw new NetlinkDecodeError('expected a Buffer', 0);
  checkNlMsgs(buf);
  const out: NlMsg[] = [];
  for (let off = 0; off < buf.length; off = nextNlMsg(buf, off)) out.push(nlMsgAt(buf, off));
  return out;
}

/**
 * Parses the body of an NLMSG_ERROR message (`struct nlmsgerr`: a negative errno, the request's
 * header, with NLM_F_CAPPED unset also the request's payload, then with NLM_F_ACK_TLVS the
 * extended-ack attributes). `flags` are the NLMSG_ERROR message's own header flags.
 * @returns `error` as a positive errno (0 = acknowledgement) and the extack, if any.
 * @throws {NetlinkDecodeError} when the body is truncated or malformed.
 */
export function parseNlmsgerr(payload: Buffer, flags: number): Nlmsgerr {
  if (!Buffer.isBuffer(payload)) throw new NetlinkDecodeError('expected a Buffer', 0);
  if (payload.length < 4) throw new NetlinkDecodeError(`nlmsgerr of ${payload.length} bytes has no error field`, 0);
  const error = 0 - payload.readInt32LE(0); // not -x: that gives -0 for 0
  if (error < 0) throw new NetlinkDecodeError(`nlmsgerr error ${-error} is positive`, 0);
  const result: Nlmsgerr = { error };
  if (payload.length < 4 + NLMSG_HDRLEN) {
    // Older or odd senders: the error number alone. TLVs cannot be located without the header.
    if (payload.length !== 4) throw new NetlinkDecodeError(`nlmsgerr truncated inside the request header`, 4);
    return result;
  }
  const reqLen = payload.readUInt32LE(4);
  result.request = {
    len: reqLen,
    type: payload.readUInt16LE(8),
    flags: payload.readUInt16LE(10),
    seq: payload.readUInt32LE(12),
    pid: payload.readUInt32LE(16),
  };
  let tlvStart = 4 + NLMSG_HDRLEN;
  // With NLM_F_CAPPED (or a positive ack) only the header is echoed; otherwise the whole request.
  if (!(flags & NLM_F_CAPPED) && error !== 0) {
    if (reqLen < NLMSG_HDRLEN) throw new NetlinkDecodeError(`echoed request length ${reqLen} is shorter than a header`, 4);
    tlvStart = 4 + align4(reqLen);
    if (tlvStart > payload.length) {
      // The kernel may leave out the padding only when nothing follows.
      if (4 + reqLen !== payload.length || flags & NLM_F_ACK_TLVS) {
        throw new NetlinkDecodeError(`echoed request of ${reqLen} bytes runs past the message`, 4);
      }
      return result;
    }
  }
  if (flags & NLM_F_ACK_TLVS) {
    const extack = parseExtack(payload, tlvStart);
    if (extack) result.extack = extack;
  }
  return result;
}

/**
 * Parses the body of an NLMSG_DONE message that ends a dump: a negative errno (0 = success),
 * then, with NLM_F_ACK_TLVS in `flags`, extended-ack attributes.
 * @throws {NetlinkDecodeError} when the body is truncated or malformed.
 */
export function parseNlmsgDone(payload: Buffer, flags: number): Nlmsgerr {
  if (!Buffer.isBuffer(payload)) throw new NetlinkDecodeError('expected a Buffer', 0);
  if (payload.length < 4) return { error: 0 }; // some families send an empty DONE
  const error = 0 - payload.readInt32LE(0); // not -x: that gives -0 for 0
  if (error < 0) throw new NetlinkDecodeError(`NLMSG_DONE error ${-error} is positive`, 0);
  const result: Nlmsgerr = { error };
  if (flags & NLM_F_ACK_TLVS) {
    const extack = parseExtack(payload, 4);
    if (extack) result.extack = extack;
  }
  return result;
}

function parseExtack(buf: Buffer, start: number): Extack | undefined {
  const ext: Extack = {};
  let found = false;
  let off = start;
  while (off < buf.length) {
    if (buf.length - off < 4) throw new NetlinkDecodeError('extack attribute header truncated', off);
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & 0x3fff;
    if (len < 4) throw new NetlinkDecodeError(`extack attribute length ${len} is shorter than its header`, off);
    if (off + len > buf.length) throw new NetlinkDecodeError(`extack attribute of ${len} bytes runs past the message`, off);
    const data = buf.subarray(off + 4, off + len);
    switch (type) {
      case NLMSGERR_ATTR_MSG: {
        const nul = data.indexOf(0);
        ext.message = data.toString('utf8', 0, nul < 0 ? data.length : nul);
        found = true;
        break;
      }
      case NLMSGERR_ATTR_OFFS:
        if (data.length >= 4) {
          ext.offset = data.readUInt32LE(0);
          found = true;
        }
        break;
      case NLMSGERR_ATTR_MISS_TYPE:
        if (data.length >= 4) {
          ext.missingType = data.readUInt32LE(0);
          found = true;
        }
        break;
      case NLMSGERR_ATTR_MISS_NEST:
        if (data.length >= 4) {
          ext.missingNest = data.readUInt32LE(0);
          found = true;
        }
        break;
      case NLMSGERR_ATTR_COOKIE:
        ext.cookie = Buffer.from(data);
        found = true;
        break;
      default:
        break; // NLMSGERR_ATTR_POLICY and future attributes: not needed here
    }
    off += align4(len);
  }
  return found ? ext : undefined;
}
