/**
 * The netlink attribute layer: a growable writer, a strict reader of TLV attributes (4-byte
 * aligned, nested, network byte order flag) and a small schema engine that turns an attribute
 * list into a typed object and back. Attributes the schema does not know, or whose payload does
 * not have the expected size, are kept as {@link RawAttr} in `other`: never dropped, never a crash.
 * @module
 */
import { formatAddress, formatAddressAt, parseAddress } from '../ip/address.js';
import { NetlinkDecodeError } from '../transport/errors.js';
import { NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_TYPE_MASK } from './constants.js';

/**
 * A message payload or attribute could not be decoded (truncated, bad length). A
 * {@link NetlinkDecodeError} (code `'ENETLINK_DECODE'`); `offset` is where, in bytes.
 */
export class CodecError extends NetlinkDecodeError {}

/** Aligns to 4 bytes (NLA_ALIGN / NLMSG_ALIGN). */
export function align4(n: number): number {
  return (n + 3) & ~3;
}

/** One attribute as it is on the wire (type without the flag bits). `data` is its payload. */
export interface RawAttr {
  type: number;
  /** NLA_F_NESTED was set. */
  nested?: boolean;
  /** NLA_F_NET_BYTEORDER was set. */
  netByteOrder?: boolean;
  data: Buffer;
}

/** A growable buffer that writes netlink headers and attributes (host byte order = little endian). */
export class Writer {
  private buf: Buffer;
  /** Bytes written so far. */
  length = 0;
  constructor(initial = 256) {
    // Pooled and not zero-filled (Buffer.alloc's fresh zeroed memory cost ~1 µs a message): every
    // byte up to `length` is written by a method, padding included (pad() writes its zeros).
    this.buf = Buffer.allocUnsafe(initial);
  }

  private reserve(n: number): number {
    const at = this.length;
    const need = at + n;
    if (need > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
      this.buf.copy(next, 0, 0, at);
      this.buf = next;
    }
    this.length = need;
    return at;
  }

  /** Appends a byte (`v & 0xff`). */
  u8(v: number): this {
    const at = this.reserve(1);
    this.buf.writeUInt8(v & 0xff, at);
    return this;
  }
  /** Appends a 16-bit unsigned integer, host byte order (little endian). */
  u16(v: number): this {
    const at = this.reserve(2);
    this.buf.writeUInt16LE(v & 0xffff, at);
    return this;
  }
  /** Appends a 32-bit unsigned integer, host byte order. */
  u32(v: number): this {
    const at = this.reserve(4);
    this.buf.writeUInt32LE(v >>> 0, at);
    return this;
  }
  /** Appends a 32-bit signed integer, host byte order. */
  s32(v: number): this {
    const at = this.reserve(4);
    this.buf.writeInt32LE(v | 0, at);
    return this;
  }
  /** Appends `b` as it is (no padding). */
  bytes(b: Uint8Array): this {
    const at = this.reserve(b.length);
    this.buf.set(b, at);
    return this;
  }
  /** Zero bytes up to the next 4-byte boundary. */
  pad(): this {
    const n = align4(this.length) - this.length;
    const at = n ? this.reserve(n) : 0; // reserve first: it may replace this.buf
    if (n) this.buf.fill(0, at, at + n); // pooled memory: not zero already
    return this;
  }

  /** An attribute whose payload is `payload` (padded). */
  attr(type: number, payload: Uint8Array, flags = 0): this {
    this.u16(4 + payload.length).u16(type | flags).bytes(payload);
    return this.pad();
  }
  /** An attribute holding one byte (padded to 4). */
  attrU8(type: number, v: number): this {
    return this.u16(5).u16(type).u8(v).pad();
  }
  /** An attribute holding a 16-bit unsigned integer, host byte order (padded to 4). */
  attrU16(type: number, v: number): this {
    return this.u16(6).u16(type).u16(v).pad();
  }
  /** An attribute holding a 16-bit unsigned integer in network byte order (a port), padded to 4. */
  attrBe16(type: number, v: number): this {
    const at = this.u16(6).u16(type).reserve(2);
    this.buf.writeUInt16BE(v & 0xffff, at);
    return this.pad();
  }
  /** An attribute holding a 32-bit unsigned integer, host byte order. */
  attrU32(type: number, v: number): this {
    return this.u16(8).u16(type).u32(v);
  }
  /** An attribute holding a 32-bit signed integer, host byte order. */
  attrS32(type: number, v: number): this {
    return this.u16(8).u16(type).s32(v);
  }
  /** An attribute holding a 64-bit unsigned integer, host byte order (`v` modulo 2^64). */
  attrU64(type: number, v: bigint): this {
    const at = this.u16(12).u16(type).reserve(8);
    this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), at);
    return this;
  }
  /** A NUL-terminated string attribute. */
  attrString(type: number, s: string): this {
    const n = Buffer.byteLength(s);
    const at = this.u16(4 + n + 1).u16(type).reserve(n + 1);
    this.buf.write(s, at, 'utf8');
    this.buf[at + n] = 0;
    return this.pad();
  }
  /** An attribute without a payload (its presence is the value). */
  attrFlag(type: number): this {
    return this.u16(4).u16(type);
  }
  /** Starts a nested attribute; pass the returned offset to {@link endNested}. */
  beginNested(type: number, flagNested = true): number {
    const at = this.length;
    this.u16(0).u16(type | (flagNested ? NLA_F_NESTED : 0));
    return at;
  }
  /** Ends the nested attribute that {@link beginNested} started at `at`: its length is now known. */
  endNested(at: number): this {
    this.buf.writeUInt16LE(this.length - at, at);
    return this;
  }
  /** Overwrites a u32 at `at` (e.g. nlmsg_len). */
  patchU32(at: number, v: number): void {
    this.buf.writeUInt32LE(v >>> 0, at);
  }
  /** The bytes written (a copy, so the writer can be reused or dropped). */
  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.length));
  }
}

/** Little-endian u16 at `off` (the caller checked the bounds). */
export function rd16(b: Buffer, off: number): number {
  return (b[off] as number) | ((b[off + 1] as number) << 8);
}

/** Little-endian u32 at `off` (the caller checked the bounds). */
export function rd32(b: Buffer, off: number): number {
  return ((b[off] as number) | ((b[off + 1] as number) << 8) | ((b[off + 2] as number) << 16)) + (b[off + 3] as number) * 0x1000000;
}

/** The type (without the flag bits) of the attribute at `off`. */
export function attrType(b: Buffer, off: number): number {
  return rd16(b, off + 2) & NLA_TYPE_MASK;
}

/**
 * Checks the attribute header at `off` (with `end - off >= 4`) and returns its length. Throws
 * {@link CodecError} for a length shorter than the header or longer than what is left: the
 * checks of {@link parseAttrs}, for readers that walk a list themselves. The error's offset is
 * counted from `base` (where the message's payload starts).
 */
export function attrLength(buf: Buffer, off: number, end: number, base = 0): number {
  const len = rd16(buf, off);
  if (len < 4) throw new CodecError(`attribute length ${len} shorter than its header`, off - base);
  if (len > end - off) throw new CodecError(`attribute of type ${rd16(buf, off + 2) & NLA_TYPE_MASK} claims ${len} bytes, ${end - off} left`, off - base);
  return len;
}

/** The attribute at `off` (whose length `len` was checked) as a {@link RawAttr}. Internal. */
export function rawAttr(buf: Buffer, off: number, len: number): RawAttr {
  const rawType = rd16(buf, off + 2);
  const a: RawAttr = { type: rawType & NLA_TYPE_MASK, data: buf.subarray(off + 4, off + len) };
  if (rawType & NLA_F_NESTED) a.nested = true;
  if (rawType & NLA_F_NET_BYTEORDER) a.netByteOrder = true;
  return a;
}

/**
 * Reads the attributes in `buf[start, end)`. Throws {@link CodecError} for an attribute shorter
 * than its header or longer than what is left; 1-3 trailing bytes are ignored as the kernel does.
 * Payloads are views into `buf` (no copy).
 */
export function parseAttrs(buf: Buffer, start = 0, end = buf.length): RawAttr[] {
  const out: RawAttr[] = [];
  let off = start;
  while (end - off >= 4) {
    const len = attrLength(buf, off, end);
    out.push(rawAttr(buf, off, len));
    off += align4(len);
  }
  return out;
}

/** Writes raw attributes back as they were (flags included). */
export function emitRawAttrs(w: Writer, attrs: readonly RawAttr[]): void {
  for (const a of attrs) {
    w.attr(a.type, a.data, (a.nested ? NLA_F_NESTED : 0) | (a.netByteOrder ? NLA_F_NET_BYTEORDER : 0));
  }
}

// ---------------------------------------------------------------------------------------------
// Value codecs

/**
 * How one attribute's payload maps to a JS value. `decode` reads the payload in place:
 * `len` bytes at `off` of `buf` (by default all of `buf`), and returns undefined when they do not
 * fit. `lean` (set by {@link decodeAttrs} in lean mode) asks nested sets to leave out `other`.
 */
export interface ValueCodec<T = unknown> {
  decode(buf: Buffer, off?: number, len?: number, lean?: boolean): T | undefined;
  encode(w: Writer, type: number, value: T): void;
}

/**
 * A `decode` of a {@link ValueCodec} from a function of the payload as its own Buffer (a view,
 * not a copy): for codecs whose readers index the payload from 0 (structs, big-endian values).
 */
export function onPayload<T>(fn: (d: Buffer) => T | undefined): ValueCodec<T>['decode'] {
  return (b, off = 0, len = b.length - off) => fn(off === 0 && len === b.length ? b : b.subarray(off, off + len));
}

export const u8: ValueCodec<number> = {
  decode: (b, off = 0, len = b.length - off) => (len === 1 ? b[off] : undefined),
  encode: (w, t, v) => void w.attrU8(t, v),
};
export const u16: ValueCodec<number> = {
  decode: (b, off = 0, len = b.length - off) => (len === 2 ? rd16(b, off) : undefined),
  encode: (w, t, v) => void w.attrU16(t, v),
};
export const be16: ValueCodec<number> = {
  decode: (b, off = 0, len = b.length - off) => (len === 2 ? ((b[off] as number) << 8) | (b[off + 1] as number) : undefined),
  encode: (w, t, v) => void w.attrBe16(t, v),
};
export const u32: ValueCodec<number> = {
  decode: (b, off = 0, len = b.length - off) => (len === 4 ? rd32(b, off) : undefined),
  encode: (w, t, v) => void w.attrU32(t, v),
};
export const s32: ValueCodec<number> = {
  decode: (b, off = 0, len = b.length - off) => (len === 4 ? rd32(b, off) | 0 : undefined),
  encode: (w, t, v) => void w.attrS32(t, v),
};
export const u64: ValueCodec<bigint> = {
  decode: (b, off = 0, len = b.length - off) => (len === 8 ? b.readBigUInt64LE(off) : undefined),
  encode: (w, t, v) => void w.attrU64(t, v),
};
/** An attribute present or not (no payload): decodes to `true`. */
export const flag: ValueCodec<true> = {
  decode: (b, off = 0, len = b.length - off) => (len === 0 ? true : undefined),
  encode: (w, t) => void w.attrFlag(t),
};

/**
 * The NUL-terminated string in `buf[off, off + len)`, or undefined when its first NUL is not its
 * last byte. UTF-8; ASCII (names, kinds) is read without leaving JavaScript.
 */
export function decodeString(b: Buffer, off: number, len: number): string | undefined {
  const end = off + len - 1;
  if (len === 0 || b[end] !== 0) return undefined;
  let s = '';
  for (let i = off; i < end; i++) {
    const c = b[i] as number;
    if (c === 0) return undefined;
    if (c >= 0x80) {
      for (let j = i + 1; j < end; j++) if (b[j] === 0) return undefined;
      return b.toString('utf8', off, end);
    }
    s += String.fromCharCode(c); // short names: cheaper than a call into Buffer's decoder
  }
  return s;
}

/** A NUL-terminated string; a payload without the NUL (or with bytes after it) is kept raw. */
export const string: ValueCodec<string> = {
  decode: (b, off = 0, len = b.length - off) => decodeString(b, off, len),
  encode: (w, t, v) => void w.attrString(t, v),
};
/** Bytes kept as they are (a copy). */
export const binary: ValueCodec<Buffer> = {
  decode: (b, off = 0, len = b.length - off) => Buffer.from(b.subarray(off, off + len)),
  encode: (w, t, v) => void w.attr(t, v),
};

/** Hardware address as lower-case hex pairs joined by ':' (any length >= 1). */
export const hwaddr: ValueCodec<string> = {
  decode: (b, off = 0, len = b.length - off) => (len > 0 ? formatHw(b, off, len) : undefined),
  encode: (w, t, v) => void w.attr(t, parseHw(v)),
};

const HEX2: readonly string[] = Array.from({ length: 256 }, (_, i) => (i < 16 ? '0' : '') + i.toString(16));
const HEXCODE: readonly number[] = Array.from('0123456789abcdef', (c) => c.charCodeAt(0));

/** `len` bytes at `off` of `d` (by default all of `d`) as lower-case hex pairs joined by ':'. */
export function formatHw(d: Uint8Array, off = 0, len = d.length - off): string {
  if (len === 6) {
    // an Ethernet address, the usual case: one string made at once
    const a = d[off] as number;
    const b = d[off + 1] as number;
    const c = d[off + 2] as number;
    const e = d[off + 3] as number;
    const f = d[off + 4] as number;
    const g = d[off + 5] as number;
    const H = HEXCODE;
    return String.fromCharCode(
      H[a >> 4]!, H[a & 15]!, 58, H[b >> 4]!, H[b & 15]!, 58, H[c >> 4]!, H[c & 15]!, 58,
      H[e >> 4]!, H[e & 15]!, 58, H[f >> 4]!, H[f & 15]!, 58, H[g >> 4]!, H[g & 15]!,
    );
  }
  let s = '';
  for (let i = 0; i < len; i++) s += (i ? ':' : '') + HEX2[d[off + i] as number];
  return s;
}

export function parseHw(v: string): Buffer {
  const parts = v.split(':');
  const out = Buffer.alloc(parts.length);
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] as string;
    if (!/^[0-9a-fA-F]{1,2}$/.test(p)) throw new TypeError(`bad hardware address ${JSON.stringify(v)}`);
    out[i] = parseInt(p, 16);
  }
  return out;
}

/** IPv4 (4 bytes) or IPv6 (16 bytes) address, as text. */
export const ip: ValueCodec<string> = {
  decode: (b, off = 0, len = b.length - off) => (len === 4 || len === 16 ? formatAddressAt(b, off, len) : undefined),
  encode: (w, t, v) => void w.attr(t, parseIp(v)),
};
/** Only a 4-byte IPv4 address. */
export const in4: ValueCodec<string> = {
  decode: (b, off = 0, len = b.length - off) => (len === 4 ? formatAddressAt(b, off, 4) : undefined),
  encode: (w, t, v) => void w.attr(t, parseIp(v, 4)),
};
/** Only a 16-byte IPv6 address. */
export const in6: ValueCodec<string> = {
  decode: (b, off = 0, len = b.length - off) => (len === 16 ? formatAddressAt(b, off, 16) : undefined),
  encode: (w, t, v) => void w.attr(t, parseIp(v, 6)),
};

/** Formats 4 or 16 bytes as an IP address (the `ip` module's text). Internal to the codec. */
export function formatIp(d: Uint8Array): string {
  return formatAddress(d);
}

/**
 * Parses an IPv4 or IPv6 address (a zone index is dropped) into 4 or 16 bytes, for the codec's
 * address attributes. Throws TypeError on bad input (validate first). Internal to the codec.
 */
export function parseIp(v: string, family?: 4 | 6): Buffer {
  const pct = typeof v === 'string' ? v.indexOf('%') : -1;
  try {
    return Buffer.from(parseAddress(pct >= 0 ? v.slice(0, pct) : v, 'address', family));
  } catch {
    throw new TypeError(`bad IP${family ? `v${family}` : ''} address ${JSON.stringify(v)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Schemas

/** One known attribute of a schema: its number, the JS field name and the value codec. */
export interface FieldSpec {
  type: number;
  name: string;
  codec: ValueCodec<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Set NLA_F_NESTED on the header when encoding (for nested attribute sets). */
  nestedFlag?: boolean;
}

/** A set of known attributes (one attribute space, e.g. IFLA_* or IFLA_BR_*). */
export interface Schema {
  readonly name: string;
  readonly fields: readonly FieldSpec[];
  readonly byType: ReadonlyMap<number, FieldSpec>;
  /** The same, as an array indexed by attribute type (the decoder's lookup). */
  readonly table: ReadonlyArray<FieldSpec | undefined>;
}

/** Builds a schema from `[type, name, codec]` triples. */
export function schema(name: string, fields: Array<[number, string, ValueCodec<any>, boolean?]>): Schema { // eslint-disable-line @typescript-eslint/no-explicit-any
  const specs: FieldSpec[] = fields.map(([type, n, codec, nestedFlag]) => (nestedFlag ? { type, name: n, codec, nestedFlag } : { type, name: n, codec }));
  const table: Array<FieldSpec | undefined> = new Array<FieldSpec | undefined>(Math.max(0, ...specs.map((f) => f.type + 1))).fill(undefined);
  for (const f of specs) table[f.type] = f;
  return { name, fields: specs, byType: new Map(specs.map((f) => [f.type, f])), table };
}

/** A schema with only the fields of `s` named in `names` (what a reader needs; see lean decoding). */
export function pick(s: Schema, names: readonly string[]): Schema {
  return schema(
    `${s.name}(${names.join(',')})`,
    s.fields.filter((f) => names.includes(f.name)).map((f) => [f.type, f.name, f.codec, f.nestedFlag]),
  );
}

/** What every decoded attribute set carries: attributes not understood, as they came. */
export interface WithOther {
  /** Attributes the schema does not know (or whose payload did not fit), kept as they came. */
  other?: RawAttr[];
}

/**
 * Decodes `buf[start, end)` with `s`: known attributes become fields, the rest goes to `other`.
 * A repeated known attribute keeps the first value; the repetitions go to `other`.
 *
 * Payloads are read in place. With `lean`, attributes that do not become fields are skipped
 * instead of kept in `other` (here and in nested sets): for readers that only want the fields,
 * e.g. the public objects of a dump. The attribute list is checked the same way (the same
 * CodecError), and every field has the value the full decode gives it. Error offsets are counted
 * from `base`.
 */
export function decodeAttrs<T extends WithOther>(s: Schema, buf: Buffer, start = 0, end = buf.length, lean = false, base = 0): T {
  const out: Record<string, unknown> = {};
  const table = s.table;
  let other: RawAttr[] | undefined;
  let off = start;
  while (end - off >= 4) {
    const len = attrLength(buf, off, end, base);
    const spec = table[rd16(buf, off + 2) & NLA_TYPE_MASK];
    let v: unknown;
    if (spec !== undefined && out[spec.name] === undefined) v = spec.codec.decode(buf, off + 4, len - 4, lean);
    if (v !== undefined) out[(spec as FieldSpec).name] = v;
    else if (!lean) (other ??= []).push(rawAttr(buf, off, len));
    off += align4(len);
  }
  if (other) out.other = other;
  return out as T;
}

/** Encodes the known fields of `value` in schema order, then `value.other` as it is. */
export function encodeAttrs(w: Writer, s: Schema, value: WithOther): void {
  const v = value as Record<string, unknown>;
  for (const f of s.fields) {
    const x = v[f.name];
    if (x === undefined) continue;
    f.codec.encode(w, f.type, x);
  }
  if (value.other) emitRawAttrs(w, value.other);
}

/**
 * Decodes a nested attribute set in `buf[off, off + len)`, or undefined when it is damaged (the
 * caller then keeps the attribute raw).
 */
export function decodeNested<T extends WithOther>(s: Schema, buf: Buffer, off: number, len: number, lean = false): T | undefined {
  try {
    return decodeAttrs<T>(s, buf, off, off + len, lean);
  } catch (err) {
    if (err instanceof CodecError) return undefined; // kept raw by the caller
    throw err;
  }
}

/** A value codec for an attribute holding a nested set of attributes described by `s`. */
export function nested<T extends WithOther>(s: Schema, flagNested = true): ValueCodec<T> {
  return {
    decode: (b, off = 0, len = b.length - off, lean = false) => decodeNested<T>(s, b, off, len, lean),
    encode: (w, t, v) => {
      const at = w.beginNested(t, flagNested);
      encodeAttrs(w, s, v);
      w.endNested(at);
    },
  };
}

/** A fixed-layout struct of little-endian u32 fields (e.g. ifa_cacheinfo). */
export function structU32<K extends string>(keys: readonly K[]): ValueCodec<Record<K, number>> {
  return {
    decode: (b, off = 0, len = b.length - off) => {
      if (len !== keys.length * 4) return undefined;
      const o = {} as Record<K, number>;
      for (let i = 0; i < keys.length; i++) o[keys[i] as K] = rd32(b, off + i * 4);
      return o;
    },
    encode: (w, t, v) => {
      const b = Buffer.alloc(keys.length * 4);
      keys.forEach((k, i) => b.writeUInt32LE(v[k] >>> 0, i * 4));
      w.attr(t, b);
    },
  };
}
