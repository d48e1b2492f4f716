/**
 * Link counters (IFLA_STATS64, `struct rtnl_link_stats64`): read from a link dump of their own, so
 * that the lean list path (links.list, which asks the kernel to skip the statistics) stays as it
 * is. Pure: decodes one RTM_NEWLINK payload read in place.
 * @module
 */
import * as C from '../codec/constants.js';
import { CodecError, decodeString } from '../codec/attrs.js';
import { IFINFOMSG_LEN } from '../codec/link.js';
import type { LinkStats } from '../types.js';

/** The fields of `struct rtnl_link_stats64` read, by their byte offset (each a __u64). */
const FIELDS = [
  ['rxPackets', 0],
  ['txPackets', 8],
  ['rxBytes', 16],
  ['txBytes', 24],
  ['rxErrors', 32],
  ['txErrors', 40],
  ['rxDropped', 48],
  ['txDropped', 56],
  ['multicast', 64],
] as const;
/** The bytes the fields above take (older kernels send at least the first 23 __u64s). */
const NEEDED = 72;

/**
 * The counters of one link message payload (`payload[start, end)`): its index, name and the
 * IFLA_STATS64 counters; undefined when it carries no IFLA_STATS64 (the request skipped them).
 * Counters are numbers: exact up to 2^53 (8 PiB, or 9e15 packets).
 * @throws {CodecError} for a truncated message or attribute.
 */
export function decodeLinkStats(payload: Buffer, start = 0, end = payload.length): LinkStats | undefined {
  if (end - start < IFINFOMSG_LEN) throw new CodecError(`ifinfomsg needs ${IFINFOMSG_LEN} bytes, got ${end - start}`, 0);
  const index = payload.readInt32LE(start + 4);
  let name: string | undefined;
  let at = -1;
  for (let off = start + IFINFOMSG_LEN; end - off >= 4; ) {
    const len = payload.readUInt16LE(off);
    if (len < 4 || len > end - off) throw new CodecError(`attribute length ${len} at ${off - start}`, off - start);
    const type = payload.readUInt16LE(off + 2) & C.NLA_TYPE_MASK;
    if (type === C.IFLA_IFNAME) name = decodeString(payload, off + 4, len - 4);
    else if (type === C.IFLA_STATS64 && len - 4 >= NEEDED) at = off + 4;
    off += (len + 3) & ~3;
  }
  if (at < 0) return undefined;
  const out = { index, name: name ?? '' } as LinkStats;
  for (const [field, o] of FIELDS) out[field] = Number(payload.readBigUInt64LE(at + o));
  return out;
}
