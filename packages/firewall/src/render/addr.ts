/**
 * Addresses and prefixes in the exact text iptables-save prints (masked network address, `/LEN`,
 * RFC 5952 IPv6), so that a rendered rule and the saved rule compare equal as strings. Pure.
 * @module
 */
import { isIP } from 'node:net';
import type { Family } from '../model.js';

/** A prefix in canonical form. */
export interface Prefix {
  family: Family;
  /** Network address bytes (host bits cleared). */
  bytes: Uint8Array;
  length: number;
}

/** Parses an address (already known valid for `isIP`) into bytes. */
export function addressBytes(addr: string): Uint8Array {
  const fam = isIP(addr);
  if (fam === 4) return Uint8Array.from(addr.split('.').map(Number));
  if (fam !== 6) throw new Error(`not an IP address: ${addr}`);
  let text = addr;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    // IPv4-suffixed form (::ffff:1.2.3.4)
    tail.push(...text.slice(lastColon + 1).split('.').map(Number));
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const hs = head ? head.split(':') : [];
  const rs = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const groups = rest === undefined ? hs : [...hs, ...Array(8 - hs.length - rs.length).fill('0'), ...rs];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  if (tail.length === 4) out.set(tail, 12);
  return out;
}

/** Formats address bytes the way inet_ntop does (lower case, longest zero run compressed). */
export function formatAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(((bytes[i * 2] ?? 0) << 8) | (bytes[i * 2 + 1] ?? 0));
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible forms are printed with a dotted tail by glibc.
  const v4tail = `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return `::ffff:${v4tail}`;
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) return g.map((x) => x.toString(16)).join(':');
  const left = g.slice(0, bestStart).map((x) => x.toString(16)).join(':');
  const right = g.slice(bestStart + bestLen).map((x) => x.toString(16)).join(':');
  return `${left}::${right}`;
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
