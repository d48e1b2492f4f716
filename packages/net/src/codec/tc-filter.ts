/**
 * Filter messages (RTM_NEWTFILTER/DELTFILTER/GETTFILTER): `struct tcmsg` (tcm_info = prio << 16 |
 * the protocol in network order) followed by TCA_* attributes, whose TCA_OPTIONS is decoded for
 * the u32 classifier (TCA_U32_*: the selector with its keys, classid, hash table, actions) and
 * kept raw for others. Actions (TCA_U32_ACT) are a list numbered by order, each with its kind and
 * options: mirred's (TCA_MIRRED_PARMS) are decoded, others kept raw. Unknown attributes are kept
 * in `other`. Pure.
 * @module
 */
import { binary, CodecError, onPayload, decodeAttrs, emitRawAttrs, encodeAttrs, nested, parseAttrs, schema, string, u32, Writer, type RawAttr, type Schema, type ValueCodec, type WithOther } from './attrs.js';
import * as T from './tc-constants.js';
import { decodeTcMessage, encodeTcMessage, stats2Codec, type TcAttrs, type TcMsg, type TcStats2Attrs } from './tc.js';

/** One key of a u32 selector (`struct tc_u32_key`): `value` and `mask` as the 32 bits at `offset` read in network order. */
export interface U32KeyRaw {
  mask: number;
  value: number;
  /** Byte offset from the selector's base (the network header). */
  offset: number;
  offmask: number;
}

/** `struct tc_u32_sel` with its keys. */
export interface U32Sel {
  /** TC_U32_* flags (TERMINAL = 1). */
  flags: number;
  offshift: number;
  /** Host order (the struct holds it in network order). */
  offmask: number;
  off: number;
  offoff: number;
  hoff: number;
  /** Host order. */
  hmask: number;
  keys: U32KeyRaw[];
}

/** `struct tc_mirred`. */
export interface TcMirredParms {
  index: number;
  capab: number;
  /** The control action after it (TC_ACT_STOLEN for a redirect, TC_ACT_PIPE for a mirror). */
  action: number;
  refcnt: number;
  bindcnt: number;
  /** TCA_EGRESS_REDIR, TCA_EGRESS_MIRROR, TCA_INGRESS_REDIR, TCA_INGRESS_MIRROR. */
  eaction: number;
  ifindex: number;
}

/** mirred: TCA_ACT_OPTIONS (TCA_MIRRED_*). */
export interface MirredOptions extends WithOther {
  parms?: TcMirredParms;
  /** `struct tcf_t` (install, lastuse, expires, firstuse), raw. */
  tm?: Buffer;
}

/** One action of an action list: its order (the attribute's type, from 1) and TCA_ACT_*. */
export interface TcActionAttrs extends WithOther {
  order: number;
  kind?: string;
  /** mirred's options decoded; other kinds' as their raw payload. */
  options?: MirredOptions | Buffer;
  index?: number;
  stats?: TcStats2Attrs;
  cookie?: Buffer;
  flags?: Buffer;
  hwStats?: Buffer;
  usedHwStats?: Buffer;
  inHwCount?: number;
}

/** u32: TCA_OPTIONS (TCA_U32_*). */
export interface U32Options extends WithOther {
  classid?: number;
  /** Hash table and bucket of the node (`800:0:` as a u32 handle). */
  hash?: number;
  link?: number;
  /** A hash table's size (the table entries of a dump). */
  divisor?: number;
  sel?: U32Sel;
  police?: Buffer;
  actions?: TcActionAttrs[];
  indev?: string;
  pcnt?: Buffer;
  mark?: Buffer;
  /** TCA_CLS_FLAGS_* (NOT_IN_HW = 8 in dumps). */
  flags?: number;
}

/** TCA_* of a filter: `options` is u32's decoded TCA_OPTIONS, or the raw payload for other classifiers. */
export interface TcFilterAttrs extends Omit<TcAttrs, 'options'> {
  options?: U32Options | Buffer;
}

/** A filter message. */
export interface TcFilterMessage {
  header: TcMsg;
  attrs: TcFilterAttrs;
}

const selCodec: ValueCodec<U32Sel> = {
  decode: onPayload((d) => {
    if (d.length < T.TC_U32_SEL_LEN) return undefined;
    const nkeys = d.readUInt8(2);
    if (d.length < T.TC_U32_SEL_LEN + nkeys * T.TC_U32_KEY_LEN) return undefined;
    const keys: U32KeyRaw[] = [];
    for (let i = 0; i < nkeys; i++) {
      const o = T.TC_U32_SEL_LEN + i * T.TC_U32_KEY_LEN;
      keys.push({ mask: d.readUInt32BE(o), value: d.readUInt32BE(o + 4), offset: d.readInt32LE(o + 8), offmask: d.readInt32LE(o + 12) });
    }
    return { flags: d.readUInt8(0), offshift: d.readUInt8(1), offmask: d.readUInt16BE(4), off: d.readUInt16LE(6), offoff: d.readInt16LE(8), hoff: d.readInt16LE(10), hmask: d.readUInt32BE(12), keys };
  }),
  encode: (w, t, v) => {
    const b = Buffer.alloc(T.TC_U32_SEL_LEN + v.keys.length * T.TC_U32_KEY_LEN);
    b.writeUInt8(v.flags & 0xff, 0);
    b.writeUInt8(v.offshift & 0xff, 1);
    b.writeUInt8(v.keys.length & 0xff, 2);
    b.writeUInt16BE(v.offmask & 0xffff, 4);
    b.writeUInt16LE(v.off & 0xffff, 6);
    b.writeInt16LE(v.offoff, 8);
    b.writeInt16LE(v.hoff, 10);
    b.writeUInt32BE(v.hmask >>> 0, 12);
    v.keys.forEach((k, i) => {
      const o = T.TC_U32_SEL_LEN + i * T.TC_U32_KEY_LEN;
      b.writeUInt32BE(k.mask >>> 0, o);
      b.writeUInt32BE(k.value >>> 0, o + 4);
      b.writeInt32LE(k.offset | 0, o + 8);
      b.writeInt32LE(k.offmask | 0, o + 12);
    });
    w.attr(t, b);
  },
};

const mirredParmsCodec: ValueCodec<TcMirredParms> = {
  decode: onPayload((d) =>
    d.length < T.TC_MIRRED_LEN
      ? undefined
      : { index: d.readUInt32LE(0), capab: d.readUInt32LE(4), action: d.readInt32LE(8), refcnt: d.readInt32LE(12), bindcnt: d.readInt32LE(16), eaction: d.readInt32LE(20), ifindex: d.readUInt32LE(24) }),
  encode: (w, t, v) => {
    const b = Buffer.alloc(T.TC_MIRRED_LEN);
    b.writeUInt32LE(v.index >>> 0, 0);
    b.writeUInt32LE(v.capab >>> 0, 4);
    b.writeInt32LE(v.action | 0, 8);
    b.writeInt32LE(v.refcnt | 0, 12);
    b.writeInt32LE(v.bindcnt | 0, 16);
    b.writeInt32LE(v.eaction | 0, 20);
    b.writeUInt32LE(v.ifindex >>> 0, 24);
    w.attr(t, b);
  },
};

/** TCA_MIRRED_*: PARMS first, as tc writes them. */
const mirredSchema = schema('mirred', [
  [T.TCA_MIRRED_PARMS, 'parms', mirredParmsCodec],
  [T.TCA_MIRRED_TM, 'tm', binary],
]);
const mirredCodec = nested<MirredOptions>(mirredSchema);

/** TCA_ACT_* but the options (written by hand after the kind: they depend on it). */
const actSchema: Schema = schema('tca_act', [
  [T.TCA_ACT_INDEX, 'index', u32],
  [T.TCA_ACT_STATS, 'stats', stats2Codec],
  [T.TCA_ACT_COOKIE, 'cookie', binary],
  [T.TCA_ACT_FLAGS, 'flags', binary],
  [T.TCA_ACT_HW_STATS, 'hwStats', binary],
  [T.TCA_ACT_USED_HW_STATS, 'usedHwStats', binary],
  [T.TCA_ACT_IN_HW_COUNT, 'inHwCount', u32],
]);

/** One action's attributes (the attribute of type `order`). */
function decodeAction(order: number, d: Buffer): TcActionAttrs {
  let kind: string | undefined;
  let optionsRaw: Buffer | undefined;
  const rest: RawAttr[] = [];
  for (const a of parseAttrs(d)) {
    if (a.type === T.TCA_ACT_KIND && kind === undefined && string.decode(a.data) !== undefined) kind = string.decode(a.data);
    else if (a.type === T.TCA_ACT_OPTIONS && optionsRaw === undefined) optionsRaw = a.data;
    else rest.push(a);
  }
  const w = new Writer(64);
  emitRawAttrs(w, rest);
  const out: TcActionAttrs = { order, ...decodeAttrs<Omit<TcActionAttrs, 'order'>>(actSchema, w.finish()) };
  if (kind !== undefined) out.kind = kind;
  if (optionsRaw !== undefined) out.options = (kind === 'mirred' ? mirredCodec.decode(optionsRaw) : undefined) ?? Buffer.from(optionsRaw);
  return out;
}

/** An action list (TCA_U32_ACT and the like): one nested attribute per action, its type the order. */
const actionsCodec: ValueCodec<TcActionAttrs[]> = {
  decode: onPayload((d) => {
    try {
      return parseAttrs(d).map((a) => decodeAction(a.type, a.data));
    } catch (err) {
      if (err instanceof CodecError) return undefined;
      throw err;
    }
  }),
  encode: (w, t, list) => {
    const at = w.beginNested(t, false);
    for (const a of list) {
      const one = w.beginNested(a.order, false);
      if (a.kind !== undefined) string.encode(w, T.TCA_ACT_KIND, a.kind);
      if (a.options !== undefined) {
        if (Buffer.isBuffer(a.options)) w.attr(T.TCA_ACT_OPTIONS, a.options, 0x8000);
        else mirredCodec.encode(w, T.TCA_ACT_OPTIONS, a.options);
      }
      const { order: _o, kind: _k, options: _p, ...rest } = a;
      encodeAttrs(w, actSchema, rest);
      w.endNested(one);
    }
    w.endNested(at);
  },
};

/** TCA_U32_*, in the order tc writes them (classid, actions, then the selector). */
const u32Schema = schema('u32', [
  [T.TCA_U32_CLASSID, 'classid', u32],
  [T.TCA_U32_ACT, 'actions', actionsCodec],
  [T.TCA_U32_SEL, 'sel', selCodec],
  [T.TCA_U32_HASH, 'hash', u32],
  [T.TCA_U32_LINK, 'link', u32],
  [T.TCA_U32_DIVISOR, 'divisor', u32],
  [T.TCA_U32_POLICE, 'police', binary],
  [T.TCA_U32_INDEV, 'indev', string],
  [T.TCA_U32_PCNT, 'pcnt', binary],
  [T.TCA_U32_MARK, 'mark', binary],
  [T.TCA_U32_FLAGS, 'flags', u32],
]);

/** u32's TCA_OPTIONS (attribute header included; not flagged nested, as tc sends it). */
export const u32OptionsCodec: ValueCodec<U32Options> = nested<U32Options>(u32Schema, false);

/** The bytes of u32 options (the payload of TCA_OPTIONS). */
function u32Payload(o: U32Options): Buffer {
  const w = new Writer(256);
  encodeAttrs(w, u32Schema, o);
  return w.finish();
}

/** Encodes a filter message: tcmsg, TCA_KIND, TCA_OPTIONS (u32's by its codec, a Buffer as it is), the rest. */
export function encodeFilterMessage(m: { header: Partial<TcMsg>; attrs: TcFilterAttrs }): Buffer {
  const { options, ...rest } = m.attrs;
  const raw = options === undefined ? undefined : Buffer.isBuffer(options) ? options : u32Payload(options);
  return encodeTcMessage({ header: m.header, attrs: raw === undefined ? rest : { ...rest, options: raw } });
}

/** Decodes a filter message. Throws {@link CodecError} on structural damage. */
export function decodeFilterMessage(payload: Buffer): TcFilterMessage {
  const m = decodeTcMessage(payload);
  const { options, ...rest } = m.attrs;
  const attrs: TcFilterAttrs = rest;
  if (options !== undefined) {
    const raw = options as Buffer; // no qdisc kind is named u32: the options stay raw
    attrs.options = (m.attrs.kind === 'u32' ? decodeAttrsSafe(raw) : undefined) ?? raw;
  }
  return { header: m.header, attrs };
}

function decodeAttrsSafe(d: Buffer): U32Options | undefined {
  try {
    return decodeAttrs<U32Options>(u32Schema, d);
  } catch (err) {
    if (err instanceof CodecError) return undefined;
    throw err;
  }
}
