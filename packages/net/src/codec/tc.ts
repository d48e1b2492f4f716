/**
 * Traffic-control messages (RTM_NEWQDISC/DELQDISC/GETQDISC, RTM_NEWTCLASS/DELTCLASS/GETTCLASS):
 * `struct tcmsg` followed by TCA_* attributes. TCA_OPTIONS is decoded per kind (htb, tbf, ingress,
 * pfifo/bfifo — one file each under tc/kinds/), raw for other kinds; TCA_STATS2 gives the
 * counters. Unknown attributes are kept in `other`.
 * @module
 */
import {
  CodecError, decodeAttrs, emitRawAttrs, encodeAttrs, flag, nested, parseAttrs, schema, string, u32, u8, Writer, type RawAttr, type Schema, type ValueCodec, type WithOther, onPayload,
} from './attrs.js';
import * as T from './tc-constants.js';
import { tcKindOf } from '../tc/kinds/index.js';
import type { FifoOptions } from '../tc/kinds/fifo.js';
import type { HtbOptions } from '../tc/kinds/htb.js';
import type { IngressOptions } from '../tc/kinds/ingress.js';
import type { TbfOptions } from '../tc/kinds/tbf.js';

export type { FifoOptions } from '../tc/kinds/fifo.js';
export type { HtbOptions, HtbParms, HtbGlob } from '../tc/kinds/htb.js';
export type { IngressOptions } from '../tc/kinds/ingress.js';
export type { TbfOptions, TbfParms } from '../tc/kinds/tbf.js';
export type { RateSpec } from '../tc/rate.js';

/** `struct tcmsg` (20 bytes). */
export interface TcMsg {
  family: number;
  /** Interface index. */
  index: number;
  /** The qdisc's handle or the class id. */
  handle: number;
  parent: number;
  /** For classes: the handle of the leaf qdisc; for qdiscs: the reference count. */
  info: number;
}

/** TCA_STATS_BASIC. */
export interface TcStatsBasic {
  bytes: bigint;
  packets: number;
}

/** TCA_STATS_QUEUE (`struct gnet_stats_queue`). */
export interface TcStatsQueue {
  qlen: number;
  backlog: number;
  drops: number;
  requeues: number;
  overlimits: number;
}

/** TCA_STATS2. */
export interface TcStats2Attrs extends WithOther {
  basic?: TcStatsBasic;
  queue?: TcStatsQueue;
  /** TCA_STATS_PKT64: the packet count when it exceeds 32 bits. */
  pkt64?: bigint;
}

/** TCA_* attributes. `options` is the kind's decoded TCA_OPTIONS, or its raw payload for other kinds. */
export interface TcAttrs extends WithOther {
  kind?: string;
  options?: HtbOptions | TbfOptions | IngressOptions | FifoOptions | Buffer;
  stats2?: TcStats2Attrs;
  chain?: number;
  hwOffload?: number;
  ingressBlock?: number;
  egressBlock?: number;
  dumpInvisible?: true;
  extWarnMsg?: string;
}

/** A qdisc or class message. */
export interface TcMessage {
  header: TcMsg;
  attrs: TcAttrs;
}

const basicCodec: ValueCodec<TcStatsBasic> = {
  // struct gnet_stats_basic: u64 bytes, u32 packets (16 bytes with the padding the kernel copies).
  decode: onPayload((d) => (d.length >= 12 ? { bytes: d.readBigUInt64LE(0), packets: d.readUInt32LE(8) } : undefined)),
  encode: (w, t, v) => {
    const b = Buffer.alloc(16);
    b.writeBigUInt64LE(v.bytes, 0);
    b.writeUInt32LE(v.packets >>> 0, 8);
    w.attr(t, b);
  },
};

const queueKeys = ['qlen', 'backlog', 'drops', 'requeues', 'overlimits'] as const;
const queueCodec: ValueCodec<TcStatsQueue> = {
  decode: onPayload((d) => (d.length >= 20 ? (Object.fromEntries(queueKeys.map((k, i) => [k, d.readUInt32LE(i * 4)])) as unknown as TcStatsQueue) : undefined)),
  encode: (w, t, v) => {
    const b = Buffer.alloc(20);
    queueKeys.forEach((k, i) => b.writeUInt32LE(v[k] >>> 0, i * 4));
    w.attr(t, b);
  },
};

const stats2Schema = schema('tca_stats', [
  [T.TCA_STATS_BASIC, 'basic', basicCodec],
  [T.TCA_STATS_QUEUE, 'queue', queueCodec],
  [T.TCA_STATS_PKT64, 'pkt64', { decode: onPayload((d: Buffer) => (d.length === 8 ? d.readBigUInt64LE(0) : undefined)), encode: (w: Writer, t: number, v: bigint) => void w.attrU64(t, v) }],
]);

/** TCA_STATS2 (also an action's TCA_ACT_STATS). */
export const stats2Codec: ValueCodec<TcStats2Attrs> = nested<TcStats2Attrs>(stats2Schema);

/** TCA_* but TCA_KIND and TCA_OPTIONS (written first, by hand: the options depend on the kind). */
const tcSchema: Schema = schema('tca', [
  [T.TCA_STATS2, 'stats2', stats2Codec],
  [T.TCA_CHAIN, 'chain', u32],
  [T.TCA_HW_OFFLOAD, 'hwOffload', u8],
  [T.TCA_INGRESS_BLOCK, 'ingressBlock', u32],
  [T.TCA_EGRESS_BLOCK, 'egressBlock', u32],
  [T.TCA_DUMP_INVISIBLE, 'dumpInvisible', flag],
  [T.TCA_EXT_WARN_MSG, 'extWarnMsg', string],
]);

/** Writes a `struct tcmsg`. */
export function writeTcMsg(w: Writer, h: Partial<TcMsg>): void {
  w.u8(h.family ?? 0).u8(0).u16(0).s32(h.index ?? 0).u32(h.handle ?? 0).u32(h.parent ?? 0).u32(h.info ?? 0);
}

/** Reads the `struct tcmsg` at the start of `payload`. */
export function readTcMsg(payload: Buffer): TcMsg {
  if (payload.length < T.TCMSG_LEN) throw new CodecError(`tcmsg needs ${T.TCMSG_LEN} bytes, got ${payload.length}`, 0);
  return {
    family: payload.readUInt8(0),
    index: payload.readInt32LE(4),
    handle: payload.readUInt32LE(8),
    parent: payload.readUInt32LE(12),
    info: payload.readUInt32LE(16),
  };
}

/** Encodes a qdisc or class message: tcmsg, TCA_KIND, TCA_OPTIONS (by the kind's codec; a Buffer as it is), the rest. */
export function encodeTcMessage(m: { header: Partial<TcMsg>; attrs: TcAttrs }): Buffer {
  const w = new Writer(m.attrs.options ? 2304 : 64);
  writeTcMsg(w, m.header);
  const { kind, options } = m.attrs;
  if (kind !== undefined) string.encode(w, T.TCA_KIND, kind);
  if (options !== undefined) {
    if (Buffer.isBuffer(options)) w.attr(T.TCA_OPTIONS, options);
    else {
      const k = tcKindOf(kind);
      if (!k) throw new TypeError(`TCA_OPTIONS of kind ${String(kind)}: give them as a Buffer`);
      k.options.encode(w, T.TCA_OPTIONS, options);
    }
  }
  encodeAttrs(w, tcSchema, m.attrs);
  return w.finish();
}

/** Decodes a qdisc or class message. Throws {@link CodecError} on structural damage. */
export function decodeTcMessage(payload: Buffer): TcMessage {
  const header = readTcMsg(payload);
  const rest: RawAttr[] = [];
  let kind: string | undefined;
  let optionsRaw: RawAttr | undefined;
  for (const a of parseAttrs(payload, T.TCMSG_LEN)) {
    if (a.type === T.TCA_KIND && kind === undefined && string.decode(a.data) !== undefined) kind = string.decode(a.data);
    else if (a.type === T.TCA_OPTIONS && optionsRaw === undefined) optionsRaw = a;
    else rest.push(a);
  }
  // The remaining attributes go through the schema (re-emitted to reuse the generic decoder).
  const w = new Writer(64);
  emitRawAttrs(w, rest);
  const attrs = decodeAttrs<TcAttrs>(tcSchema, w.finish());
  if (kind !== undefined) attrs.kind = kind;
  if (optionsRaw) {
    const decoded = tcKindOf(kind)?.options.decode(optionsRaw.data) as TcAttrs['options'];
    attrs.options = decoded ?? Buffer.from(optionsRaw.data);
  }
  return { header, attrs };
}
