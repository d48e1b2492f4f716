/**
 * The IP arithmetic of @vmhost/host, in one place: parsing and canonical text of addresses and
 * prefixes (bigint values over @vmhost/net's codec), containment, the IPv4 netmask, and IPv4 as
 * a 32-bit number. The spec, the engine and dnsmasq's options use only this module, so that moving
 * to a shared IP module of @vmhost/net is one edit here.
 * @module
 */
import { isIP } from 'node:net';
import { codec } from '@vmhost/net';
import type { Cidr } from './types.js';

/** A parsed address. */
export interface Addr {
  family: 4 | 6;
  /** Canonical text (RFC 5952 for IPv6). */
  text: string;
  value: bigint;
}

/** A parsed `ADDRESS/LEN`. */
export interface Prefix {
  addr: Addr;
  length: number;
  /** First and last address of the network. */
  first: bigint;
  last: bigint;
}

/** 32 or 128. */
export const bitsOf = (family: 4 | 6): number => (family === 4 ? 32 : 128);

function toBigint(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

/** The canonical text of the address `v` of `family`. */
export function formatAddr(v: bigint, family: 4 | 6): string {
  const bytes = new Uint8Array(bitsOf(family) / 8);
  for (let i = bytes.length - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return codec.formatIp(bytes);
}

/** Parses a bare address of `family` (no prefix length, no zone index); undefined when it is not one. */
export function parseAddr(v: unknown, family: 4 | 6): Addr | undefined {
  if (typeof v !== 'string' || isIP(v) !== family || v.includes('%')) return undefined;
  const bytes = codec.parseIp(v, family);
  return { family, text: codec.formatIp(bytes), value: toBigint(bytes) };
}

/** Parses `ADDRESS/LEN` of `family`; undefined when it is not one. */
export function parsePrefix(v: unknown, family: 4 | 6): Prefix | undefined {
  const m = typeof v === 'string' ? /^([^/]+)\/(\d{1,3})$/.exec(v) : null;
  const addr = m ? parseAddr(m[1], family) : undefined;
  if (!m || !addr || Number(m[2]) > bitsOf(family)) return undefined;
  const length = Number(m[2]);
  const hostMask = (1n << BigInt(bitsOf(family) - length)) - 1n;
  const first = addr.value & ~hostMask;
  return { addr, length, first, last: first | hostMask };
}

/** The network of `p` with its length: `192.168.0.0/24`. */
export const prefixText = (p: Prefix): string => `${formatAddr(p.first, p.addr.family)}/${p.length}`;

/** Whether the address value `v` is inside `p`. */
export const contains = (p: Prefix, v: bigint): boolean => v >= p.first && v <= p.last;

/** The public form of a prefix ({@link Cidr}). */
export function toCidr(p: Prefix): Cidr {
  return { family: p.addr.family, address: p.addr.text, prefixLength: p.length, cidr: `${p.addr.text}/${p.length}`, network: prefixText(p) };
}

/** The dotted IPv4 netmask of a prefix length: 24 → `255.255.255.0`. */
export function netmask(prefixLength: number): string {
  const m = prefixLength === 0 ? 0 : (~0 << (32 - prefixLength)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join('.');
}

/** A dotted IPv4 address as an unsigned 32-bit number. */
export function ipv4ToInt(a: string): number {
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0) >>> 0;
}

/** Whether a CIDR or address text is IPv6. */
export const isIpv6Text = (s: string): boolean => s.includes(':');
