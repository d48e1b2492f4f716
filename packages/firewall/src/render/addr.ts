/**
 * Addresses and prefixes in the exact text iptables-save prints (masked network address, `/LEN`,
 * inet_ntop IPv6 through @vmhost/net's codec), so that a rendered rule and the saved rule compare equal as strings. Pure.
 * @module
 */
import { isIP } from 'node:net';
import { codec } from '@vmhost/net';
import type { Family } from '../model.js';

/** A prefix in canonical form. */
export interface Prefix {
  family: Family;
  /** Network address bytes (host bits cleared). */
  bytes: Uint8Array;
  length: number;
}

/** Parses an address (already known valid for `isIP`) into bytes (@vmhost/net's codec). */
export function addressBytes(addr: string): Uint8Array {
  return codec.parseIp(addr);
}

/**
 * Formats address bytes the way glibc's inet_ntop does, which is what iptables-save prints:
 * @vmhost/net's RFC 5952 formatting (lower case, longest zero run compressed, `::ffff:a.b.c.d`),
 * except that inet_ntop also writes an IPv4-compatible address (`::a.b.c.d`, six zero groups then
 * a non-zero one) with a dotted tail, where RFC 5952 gives `::102:304`.
 */
export function formatAddress(bytes: Uint8Array): string {
  if (bytes.length === 16 && (bytes[12] !== 0 || bytes[13] !== 0) && bytes.subarray(0, 12).every((b) => b === 0)) {
    return `::${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  return codec.formatIp(bytes);
}

/** Parses `ADDR[/LEN]` (already validated) into a masked prefix; a bare address is a host prefix. */
export function toPrefix(text: string): Prefix {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const bytes = addressBytes(addr);
  const family: Family = bytes.length === 4 ? 4 : 6;
  const length = slash < 0 ? bytes.length * 8 : Number(text.slice(slash + 1));
  for (let bit = length; bit < bytes.length * 8; bit++) {
    const i = bit >> 3;
    bytes[i] = (bytes[i] ?? 0) & ~(0x80 >> (bit & 7));
  }
  return { family, bytes, length };
}

/** `ADDR/LEN` as iptables-save prints a `-s`/`-d` match. */
export function formatPrefix(p: Prefix): string {
  return `${formatAddress(p.bytes)}/${p.length}`;
}

/** Canonical prefix text of `ADDR[/LEN]`. */
export function canonicalPrefix(text: string): string {
  return formatPrefix(toPrefix(text));
}

/** Canonical text of a single address. */
export function canonicalAddress(text: string): string {
  // node's isIP accepts only dotted quads without leading zeros: a valid IPv4 address is canonical
  if (isIP(text) === 4) return text;
  return formatAddress(addressBytes(text));
}

/** The family of a valid address or prefix text. */
export function familyOf(text: string): Family {
  const slash = text.indexOf('/');
  return isIP(slash < 0 ? text : text.slice(0, slash)) === 4 ? 4 : 6;
}

/** Whether prefix `a` contains address or prefix `b` (same family). */
export function prefixContains(a: Prefix, b: Prefix): boolean {
  if (a.family !== b.family || b.length < a.length) return false;
  for (let bit = 0; bit < a.length; bit++) {
    const i = bit >> 3;
    const m = 0x80 >> (bit & 7);
    if (((a.bytes[i] ?? 0) & m) !== ((b.bytes[i] ?? 0) & m)) return false;
  }
  return true;
}
