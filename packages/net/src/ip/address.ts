/**
 * IP addresses as bytes and text: strict parsing (what `net.isIP` accepts, without a zone index),
 * RFC 5952 text, and the text glibc's inet_ntop gives (which iptables-save prints). Pure.
 * @module
 */
import { isIP } from 'node:net';
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
  const hit = parsed.get(text);
  if (hit !== undefined && (family === undefined || hit.length === (family === 4 ? 4 : 16))) return hit.slice();
  const bytes = parseUncached(text, field, family);
  parsed.set(text as string, bytes.slice());
  return bytes;
}

/** The addresses parsed lately (a caller gets a copy of the bytes). */
const parsed = new ParseMemo<Uint8Array>();

function parseUncached(text: unknown, field: string, family: IpFamily | undefined): Uint8Array {
  const f = typeof text === 'string' && !text.includes('%') ? isIP(text) : 0;
  if (f === 0 || (family !== undefined && f !== family)) {
    throw new ValidationError(field, text, `expected an ${family ? `IPv${family}` : 'IPv4 or IPv6'} address`);
  }
  const s = text as string;
  if (f === 4) return Uint8Array.from(s.split('.'), Number);
  // isIP accepted it: groups of 1-4 hex digits, at most one `::`, maybe a dotted IPv4 tail
  const out = new Uint8Array(16);
  let end = s.length;
  let words = 8;
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) >= 0) {
    const q = s.slice(lastColon + 1).split('.');
    for (let i = 0; i < 4; i++) out[12 + i] = Number(q[i]);
    end = lastColon + 1;
    words = 6;
    if (end >= 2 && s[end - 2] !== ':') end--; // `a:b:c:d:e:f:1.2.3.4`: drop the colon before the tail
  }
  const dbl = s.indexOf('::');
  const put = (from: number, to: number, at: number): number => {
    // the groups of s[from, to) written from word `at`; returns the word after the last
    let w = at;
    for (let i = from; i < to; ) {
      let j = s.indexOf(':', i);
      if (j < 0 || j > to) j = to;
      const x = parseInt(s.slice(i, j), 16);
      out[w * 2] = x >> 8;
      out[w * 2 + 1] = x & 0xff;
      w++;
      i = j + 1;
    }
    return w;
  };
  if (dbl < 0) put(0, end, 0);
  else {
    const headEnd = dbl;
    const tailStart = dbl + 2;
    put(0, headEnd, 0);
    // the tail's groups go at the end of the words before the IPv4 tail (if any)
    const tail = tailStart < end ? s.slice(tailStart, end).replace(/:$/, '') : '';
    const n = tail === '' ? 0 : tail.split(':').length;
    if (n > 0) put(tailStart, tailStart + tail.length, words - n);
  }
  return out;
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
  return formatAddress(parseAddress(text, field));
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
  const x = parseAddress(a, 'a');
  const y = parseAddress(b, 'b');
  if (x.length !== y.length) return x.length - y.length;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return 0;
}
