/**
 * IP prefixes (`ADDRESS/LEN`): one type, {@link Prefix}, for an interface address with its
 * prefix length and for a network; mask, contains, overlaps, the nth address, host checks and the
 * text iptables-save prints. Pure.
 * @module
 */
import { ValidationError } from '../errors.js';
import { ParseMemo } from './memo.js';
import { familyOfBytes, formatAddress, formatAddressInetNtop, fromBigInt, addressBytes, toBigInt, type IpFamily } from './address.js';

/**
 * A prefix: an address with a prefix length, such as an interface address `192.168.0.1/24`
 * (host bits set) or a network `192.168.0.0/24`. Plain data (JSON-safe); every text canonical.
 */
export interface Prefix {
  /** 4 or 6. */
  readonly family: IpFamily;
  /** The address as given, in canonical text (`192.168.0.1`, `2001:db8::1`). */
  readonly address: string;
  /** 0-32 or 0-128. */
  readonly prefixLength: number;
  /** `address/prefixLength`. */
  readonly cidr: string;
  /** The network (host bits cleared) with its length: `192.168.0.0/24`. */
  readonly network: string;
}

/** Options of {@link parsePrefix}. */
export interface ParsePrefixOptions {
  /** Names the value in errors (default `'prefix'`). */
  field?: string;
  /** Only this family. */
  family?: IpFamily;
  /** A bare address is a host prefix (/32, /128). Default false: `/LEN` is required. */
  bare?: boolean;
  /** Refuse host bits (a network is wanted). Default false. */
  network?: boolean;
}

/** Something naming a prefix: a {@link Prefix} or its text. Text without `/LEN` is a host prefix. */
export type PrefixLike = Prefix | string;

const bits = (family: IpFamily): number => (family === 4 ? 32 : 128);

/**
 * Parses `ADDRESS/LEN` (or a bare address with `bare: true`).
 * @throws {ValidationError} naming `options.field` and the value.
 */
export function parsePrefix(text: unknown, options: ParsePrefixOptions = {}): Prefix {
  const hit = prefixes.get(text);
  // what the options check, checked again on the kept prefix (a refusal goes the long way, for its error)
  if (hit !== undefined && (options.family === undefined || hit.family === options.family) && (options.bare || (text as string).includes('/')) && (!options.network || hit.cidr === hit.network)) return { ...hit };
  const p = parsePrefixUncached(text, options);
  prefixes.set(text as string, p);
  return { ...p };
}

/** The prefixes parsed lately (a caller gets a copy). */
const prefixes = new ParseMemo<Prefix>();

function parsePrefixUncached(text: unknown, options: ParsePrefixOptions): Prefix {
  const { bytes, length } = parseParts(text, options);
  const p = makePrefix(bytes, length);
  if (options.network && `${p.address}/${length}` !== p.network) {
    throw new ValidationError(options.field ?? 'prefix', text, `host bits set; the network is ${p.network}`);
  }
  return p;
}

/** The address bytes and length of `ADDRESS/LEN` text, checked as {@link parsePrefix} checks it (but for `network`). */
function parseParts(text: unknown, options: ParsePrefixOptions): { bytes: Uint8Array; length: number; family: IpFamily } {
  const field = options.field ?? 'prefix';
  if (typeof text !== 'string') throw new ValidationError(field, text, 'expected ADDRESS/PREFIXLEN');
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  let bytes: Uint8Array;
  try {
    bytes = addressBytes(addrText, field, options.family);
  } catch {
    const fam = options.family ? `an IPv${options.family}` : 'an IPv4 or IPv6';
    throw new ValidationError(field, text, `expected ADDRESS/PREFIXLEN with ${fam} address`);
  }
  const family = familyOfBytes(bytes);
  const max = bits(family);
  let length = max;
  if (slash < 0) {
    if (!options.bare) throw new ValidationError(field, text, 'missing /PREFIXLEN');
  } else {
    const s = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(s) || Number(s) > max) throw new ValidationError(field, text, `prefix length must be 0-${max}`);
    length = Number(s);
  }
  return { bytes, length, family };
}

/** `bytes` with every bit after the first `length` cleared (a new array; `bytes` itself when none is set). */
function masked(bytes: Uint8Array, length: number): Uint8Array {
  let out: Uint8Array | undefined;
  for (let i = length >> 3; i < bytes.length; i++) {
    const keep = i === length >> 3 ? (0xff00 >> (length & 7)) & 0xff : 0;
    const b = bytes[i] as number;
    if ((b & keep) === b) continue;
    out ??= Uint8Array.from(bytes);
    out[i] = b & keep;
  }
  return out ?? bytes;
}

/** Whether the first `length` bits of `a` and `b` (of one family) are equal. */
function samePrefixBits(a: Uint8Array, b: Uint8Array, length: number): boolean {
  const whole = length >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const rest = length & 7;
  if (rest === 0) return true;
  const keep = (0xff00 >> rest) & 0xff;
  return ((a[whole] as number) & keep) === ((b[whole] as number) & keep);
}

/** The prefix of address `bytes` (4 or 16) with `length`. */
export function makePrefix(bytes: Uint8Array, length: number): Prefix {
  const family = familyOfBytes(bytes);
  if (!Number.isInteger(length) || length < 0 || length > bits(family)) throw new RangeError(`prefix length ${length} out of range for IPv${family}`);
  const address = formatAddress(bytes);
  const netBytes = masked(bytes, length);
  const net = netBytes === bytes ? address : formatAddress(netBytes);
  return { family, address, prefixLength: length, cidr: `${address}/${length}`, network: `${net}/${length}` };
}

/** The address bytes of a prefix given as text or {@link Prefix}, with its length and family. */
function bytesOf(p: PrefixLike, field: string): { bytes: Uint8Array; length: number; family: IpFamily } {
  if (typeof p !== 'string') return { bytes: addressBytes(p.address), length: p.prefixLength, family: p.family };
  return parseParts(p, { field, bare: true });
}

/** A {@link PrefixLike} as a {@link Prefix} (text without `/LEN` is a host prefix). @throws {ValidationError} */
export function toPrefix(p: PrefixLike, field = 'prefix'): Prefix {
  return typeof p === 'string' ? parsePrefix(p, { field, bare: true }) : p;
}

function maskBits(family: IpFamily, length: number): bigint {
  const all = (1n << BigInt(bits(family))) - 1n;
  return all ^ ((1n << BigInt(bits(family) - length)) - 1n);
}

/** First and last address of a prefix's network, as integers. */
function range(p: Prefix): [bigint, bigint] {
  const v = toBigInt(addressBytes(p.address));
  const m = maskBits(p.family, p.prefixLength);
  const first = v & m;
  return [first, first | (m ^ ((1n << BigInt(bits(p.family))) - 1n))];
}

/** The netmask of a prefix length: `255.255.255.0` for an IPv4 /24, `ffff:ffff:ffff:ffff::` for an IPv6 /64. */
export function netmask(family: IpFamily, length: number): string {
  return formatAddress(fromBigInt(maskBits(family, length), family));
}

/** The network address alone (host bits cleared): `192.168.0.0` for `192.168.0.7/24`. */
export function networkAddress(p: PrefixLike): string {
  const q = toPrefix(p);
  return formatAddress(fromBigInt(range(q)[0], q.family));
}

/** The last address of the network (the IPv4 broadcast address): `192.168.0.255` for a /24. */
export function lastAddress(p: PrefixLike): string {
  const q = toPrefix(p);
  return formatAddress(fromBigInt(range(q)[1], q.family));
}

/** How many addresses the prefix spans (2^(bits - length)). */
export function size(p: PrefixLike): bigint {
  const q = toPrefix(p);
  return 1n << BigInt(bits(q.family) - q.prefixLength);
}

/** Whether the network of `p` contains address or prefix `x` (of the same family; a prefix wholly). */
export function contains(p: PrefixLike, x: PrefixLike): boolean {
  const a = bytesOf(p, 'prefix');
  const b = bytesOf(x, 'address');
  if (a.family !== b.family || b.length < a.length) return false;
  return samePrefixBits(a.bytes, b.bytes, a.length);
}

/** Whether the networks of `a` and `b` share any address (one contains the other). */
export function overlaps(a: PrefixLike, b: PrefixLike): boolean {
  const p = bytesOf(a, 'prefix');
  const q = bytesOf(b, 'prefix');
  if (p.family !== q.family) return false;
  return samePrefixBits(p.bytes, q.bytes, Math.min(p.length, q.length));
}

/**
 * The address `n` places into the network: 0 is the network address, `nth('192.168.0.0/24', 100)`
 * is `192.168.0.100`, `nth('2001:db8::/64', 0x100)` is `2001:db8::100`; a negative `n` counts
 * from the end (-1 is the last address).
 * @throws {RangeError} when `n` falls outside the prefix.
 */
export function nth(p: PrefixLike, n: number | bigint): string {
  const q = toPrefix(p);
  if (typeof n === 'number' && !Number.isSafeInteger(n)) throw new RangeError(`nth: ${n} is not an integer`);
  const i = BigInt(n);
  const [first, last] = range(q);
  const v = i >= 0n ? first + i : last + 1n + i;
  if (v < first || v > last) throw new RangeError(`nth: ${n} is outside ${q.network}`);
  return formatAddress(fromBigInt(v, q.family));
}

/**
 * Whether `p.address` may be given to a host in its network: not the network address nor (IPv4)
 * the broadcast address. A /31 or /32 (RFC 3021) and an IPv6 /127 or /128 (RFC 6164) have no
 * such reserved addresses; for IPv6 the network address is the subnet-router anycast address.
 */
export function isHostAddress(p: PrefixLike): boolean {
  const q = toPrefix(p);
  const max = bits(q.family);
  if (q.prefixLength >= max - 1) return true;
  const v = toBigInt(addressBytes(q.address));
  const [first, last] = range(q);
  return v !== first && (q.family === 6 || v !== last);
}

/**
 * The text iptables-save / ip6tables-save prints for a `-s`/`-d` match of this prefix: the
 * network address as inet_ntop writes it, then `/LEN` (a host is `/32` or `/128`).
 */
export function iptablesText(p: PrefixLike): string {
  const q = bytesOf(p, 'prefix');
  return `${formatAddressInetNtop(masked(q.bytes, q.length))}/${q.length}`;
}
