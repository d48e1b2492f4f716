/**
 * IP addresses as bytes and text: strict parsing (what `net.isIP` accepts, without a zone index),
 * RFC 5952 text, and the text glibc's inet_ntop gives (which iptables-save prints). Pure.
 * @module
 */
import { ValidationError } from '../errors.js';
import { ParseMemo } from './memo.js';

/** 4 or 6. */
export type IpFamily = 4 | 6;

/**
 * Parses an IPv4 address (dotted quad) or an IPv6 address (RFC 4291 text, an IPv4 tail allowed)
 * into 4 or 16 bytes. No zone index (`%eth0`), no prefix length.
 * @param field names the value in the {@link ValidationError} (default `'address'`).
 * @param family only this family is accepted.
 * @throws {ValidationError} when `text` is not such an address.
 */
export function parseAddress(text: unknown, field = 'address', family?: IpFamily): Uint8Array {
  return addressBytes(text, field, family).slice();
}

/**
 * {@link parseAddress} without the copy: the bytes kept for `text`, shared with every other
 * caller. Internal to the ip module, for callers that only read them.
 */
export function addressBytes(text: unknown, field = 'address', family?: IpFamily): Uint8Array {
  const hit = parsed.get(text);
  if (hit !== undefined && (family === undefined || hit.length === (family === 4 ? 4 : 16))) return hit;
  const bytes = typeof text === 'string' ? parseText(text) : undefined;
  if (bytes === undefined || (family !== undefined && bytes.length !== (family === 4 ? 4 : 16))) {
    throw new ValidationError(field, text, `expected an ${family ? `IPv${family}` : 'IPv4 or IPv6'} address`);
  }
  parsed.set(text as string, bytes);
  return bytes;
}

/** The addresses parsed lately (never handed out to be written: {@link parseAddress} copies). */
const parsed = new ParseMemo<Uint8Array>();

/**
 * The bytes of `s` when it is an address as `net.isIP` accepts it without a zone index, else
 * undefined. One pass over the text: `net.isIP`'s IPv6 expression costs ~3 ms to compile and run
 * the first time in a process, more than all the addresses of a large host file.
 */
function parseText(s: string): Uint8Array | undefined {
  if (s.indexOf(':') < 0) {
    const out = new Uint8Array(4);
    return dottedQuad(s, 0, out, 0) ? out : undefined;
  }
  const words: number[] = [];
  let gap = -1; // the number of words before `::`, when there is one
  let i = 0;
  const n = s.length;
  if (s.charCodeAt(0) === 58 /* : */) {
    if (s.charCodeAt(1) !== 58) return undefined;
    gap = 0;
    i = 2;
  }
  while (i < n) {
    let j = i;
    let v = 0;
    for (; j < n && j - i < 5; j++) {
      const d = hexDigit(s.charCodeAt(j));
      if (d < 0) break;
      v = v * 16 + d;
    }
    if (j === i) return undefined;
    if (s.charCodeAt(j) === 46 /* . */) {
      // the IPv4 tail: two words, and the end of the text
      const q = new Uint8Array(4);
      if (words.length > 6 || !dottedQuad(s, i, q, 0)) return undefined;
      words.push(((q[0] as number) << 8) | (q[1] as number), ((q[2] as number) << 8) | (q[3] as number));
      break;
    }
    if (j - i > 4 || words.length === 8) return undefined;
    words.push(v);
    if (j === n) break;
    if (s.charCodeAt(j) !== 58) return undefined;
    if (s.charCodeAt(j + 1) === 58) {
      if (gap >= 0) return undefined;
      gap = words.length;
      i = j + 2;
    } else {
      i = j + 1;
      if (i === n) return undefined; // a single trailing colon
    }
  }
  if (gap < 0 ? words.length !== 8 : words.length > 7) return undefined;
  const out = new Uint8Array(16);
  for (let k = 0; k < words.length; k++) {
    const at = gap >= 0 && k >= gap ? 8 - words.length + k : k;
    out[at * 2] = (words[k] as number) >> 8;
    out[at * 2 + 1] = (words[k] as number) & 0xff;
  }
  return out;
}

/** The value of hex digit `c` (a char code), or -1. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Reads the dotted quad that is all of `s` from `from` into `out[at..at+4]`: four decimal numbers
 * 0-255 without leading zeros, as `net.isIPv4` accepts. Returns whether it is one.
 */
function dottedQuad(s: string, from: number, out: Uint8Array, at: number): boolean {
  let i = from;
  for (let part = 0; part < 4; part++) {
    if (part > 0) {
      if (s.charCodeAt(i) !== 46) return false;
      i++;
    }
    const start = i;
    let v = 0;
    for (; i < s.length && i - start < 4; i++) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
    }
    const digits = i - start;
    if (digits === 0 || digits > 3 || v > 255 || (digits > 1 && s.charCodeAt(start) === 48)) return false;
    out[at + part] = v;
  }
  return i === s.length;
}

/** The family of 4 or 16 address bytes. */
export function familyOfBytes(bytes: Uint8Array): IpFamily {
  if (bytes.length === 4) return 4;
  if (bytes.length === 16) return 6;
  throw new TypeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
}

function groupsOf(d: Uint8Array): number[] {
  const g: number[] = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 8; i++) g[i] = ((d[i * 2] as number) << 8) | (d[i * 2 + 1] as number);
  return g;
}

/** The longest run of two or more zero groups (the first on ties), as [start, length], or [-1, 0]. */
function zeroRun(g: number[]): [number, number] {
  let at = -1;
  let len = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > len) [at, len] = [i, j - i];
    i = j;
  }
  return at < 0 ? [-1, 0] : [at, len];
}

/** Groups [from, to) of `g` in hex, joined by ':'. */
function hexJoin(g: number[], from: number, to: number): string {
  let out = '';
  for (let i = from; i < to; i++) out += i === from ? (g[i] as number).toString(16) : `:${(g[i] as number).toString(16)}`;
  return out;
}

function compress(g: number[], run: [number, number], tail = ''): string {
  const [at, len] = run;
  const body = at < 0 ? hexJoin(g, 0, g.length) : `${hexJoin(g, 0, at)}::${hexJoin(g, at + len, g.length)}`;
  if (!tail) return body;
  return body.endsWith(':') ? `${body}${tail}` : `${body}:${tail}`;
}

const dotted = (d: Uint8Array, at: number): string => `${d[at]}.${d[at + 1]}.${d[at + 2]}.${d[at + 3]}`;

/**
 * Address bytes as canonical text: a dotted quad for IPv4; RFC 5952 for IPv6 (lower case, no
 * leading zeros, the longest run of two or more zero groups compressed, the first on ties), with
 * an IPv4-mapped address as `::ffff:192.0.2.1` (RFC 5952 §5).
 */
export function formatAddress(bytes: Uint8Array): string {
  return formatAddressAt(bytes, 0, familyOfBytes(bytes) === 4 ? 4 : 16);
}

/** Where {@link formatAddressAt} writes the text (one string is made from it: no pieces). */
const TEXT = Buffer.alloc(48);
const HEXC = Buffer.from('0123456789abcdef', 'latin1');

/** Writes `v` (0-255) in decimal at `n`; returns the new end. */
function putDec(v: number, n: number): number {
  if (v >= 100) {
    TEXT[n++] = 48 + Math.floor(v / 100);
    v %= 100;
    TEXT[n++] = 48 + Math.floor(v / 10);
  } else if (v >= 10) {
    TEXT[n++] = 48 + Math.floor(v / 10);
  }
  TEXT[n++] = 48 + (v % 10);
  return n;
}

/** Writes the dotted quad at `off` of `b` at `n`; returns the new end. */
function putQuad(b: Uint8Array, off: number, n: number): number {
  for (let i = 0; i < 4; i++) {
    if (i) TEXT[n++] = 46; // '.'
    n = putDec(b[off + i] as number, n);
  }
  return n;
}

/** Writes `g` (0-0xffff) in hex without leading zeros at `n`; returns the new end. */
function putHex(g: number, n: number): number {
  let shift = 12;
  while (shift > 0 && g >> shift === 0) shift -= 4;
  for (; shift >= 0; shift -= 4) TEXT[n++] = HEXC[(g >> shift) & 15] as number;
  return n;
}

/**
 * {@link formatAddress} of the `len` (4 or 16) bytes at `off` of `b`, read in place (the codec
 * formats addresses inside received datagrams). Internal.
 */
export function formatAddressAt(b: Uint8Array, off: number, len: 4 | 16 | number): string {
  if (len === 4) return TEXT.toString('latin1', 0, putQuad(b, off, 0));
  if (len !== 16) throw new TypeError(`an IP address has 4 or 16 bytes, not ${len}`);
  // The longest run of two or more zero groups, the first on ties.
  let at = -1;
  let run = 1;
  for (let i = 0; i < 8; ) {
    if (b[off + 2 * i] !== 0 || b[off + 2 * i + 1] !== 0) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < 8 && b[off + 2 * j] === 0 && b[off + 2 * j + 1] === 0) j++;
    if (j - i > run) {
      at = i;
      run = j - i;
    }
    i = j;
  }
  let n = 0;
  if (at === 0 && run === 5 && b[off + 10] === 0xff && b[off + 11] === 0xff) {
    n = TEXT.write('::ffff:', 0, 'latin1');
    return TEXT.toString('latin1', 0, putQuad(b, off + 12, n));
  }
  for (let i = 0; i < 8; i++) {
    if (i === at) {
      TEXT[n++] = 58; // ':'
      if (i === 0) TEXT[n++] = 58;
      i += run - 1;
      continue;
    }
    n = putHex(((b[off + 2 * i] as number) << 8) | (b[off + 2 * i + 1] as number), n);
    if (i < 7) TEXT[n++] = 58;
  }
  return TEXT.toString('latin1', 0, n);
}

/**
 * Address bytes as glibc's inet_ntop writes them, which is what iptables-save and ip6tables-save
 * print: RFC 5952 text, except that an IPv4-compatible address (six zero groups, then a non-zero
 * seventh) gets a dotted tail too: `::1.2.3.4` where RFC 5952 writes `::102:304`; `::2` stays hex.
 */
export function formatAddressInetNtop(bytes: Uint8Array): string {
  if (familyOfBytes(bytes) === 6) {
    const g = groupsOf(bytes);
    const run = zeroRun(g);
    if (run[0] === 0 && (run[1] === 6 || (run[1] === 5 && g[5] === 0xffff))) return compress(g.slice(0, 6), run, dotted(bytes, 12));
  }
  return formatAddress(bytes);
}

/** The canonical text ({@link formatAddress}) of an address given as text. @throws {ValidationError} */
export function canonicalAddress(text: unknown, field = 'address'): string {
  return formatAddress(addressBytes(text, field));
}

/** Address bytes as an unsigned integer. */
export function toBigInt(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

/** An unsigned integer as address bytes of `family`. */
export function fromBigInt(v: bigint, family: IpFamily): Uint8Array {
  const out = new Uint8Array(family === 4 ? 4 : 16);
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/**
 * Orders two addresses by value, as unsigned integers: negative when `a` comes first, 0 when they
 * are the same address (however written), positive otherwise. IPv4 addresses sort before IPv6.
 * @throws {ValidationError} when either is not an address.
 */
export function compare(a: string, b: string): number {
  const x = addressBytes(a, 'a');
  const y = addressBytes(b, 'b');
  if (x.length !== y.length) return x.length - y.length;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return 0;
}
