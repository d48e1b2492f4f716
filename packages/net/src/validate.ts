/**
 * Input validation shared by the packages: every check throws {@link ValidationError} naming the
 * field and the value, before anything is sent to the kernel.
 * @module
 */
import { isIP } from 'node:net';
import { ValidationError } from './errors.js';
import { parsePrefix, type ParsePrefixOptions, type Prefix } from './ip/prefix.js';

/** Longest interface name the kernel takes (IFNAMSIZ - 1). */
export const IFNAMSIZ_MAX = 15;

/** The characters of an interface name (its length aside): see {@link validateIfName}. */
export const IFNAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/**
 * Interface name: 1-15 bytes of ASCII letters, digits, '-', '_' and '.', not starting with '-' or
 * '.'. Stricter than the kernel (whose dev_valid_name refuses only '.', '..', '/', ':' and
 * whitespace) on purpose: names go as they are into iptables rules (where `br+` is a wildcard and
 * quotes are parsed), dnsmasq.conf (where ',' separates values), sysctl paths and other
 * programs' command lines (where a leading '-' reads as an option), and `%` asks the kernel to
 * pick the number. The same rule everywhere, reading links included (reach a link with another
 * name by its index).
 */
export function validateIfName(name: unknown, field = 'name'): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) throw new ValidationError(field, name, 'expected a non-empty interface name');
  if (Buffer.byteLength(name) > IFNAMSIZ_MAX) throw new ValidationError(field, name, `longer than ${IFNAMSIZ_MAX} bytes`);
  if (!IFNAME_RE.test(name)) {
    throw new ValidationError(field, name, "expected ASCII letters, digits, '-', '_' and '.', not starting with '-' or '.'");
  }
}

/**
 * Refuses keys of `obj` that are not in `allowed`: a misspelt or unsupported field (`peer.up`)
 * would otherwise be silently ignored. The error names `base.key` and lists the allowed keys.
 * @throws {ValidationError}
 */
export function checkKeys(obj: object, allowed: readonly string[], base = ''): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) {
      throw new ValidationError(base ? `${base}.${k}` : k, (obj as Record<string, unknown>)[k], `unknown key (expected one of: ${allowed.join(', ')})`);
    }
  }
}

/** Options of {@link parseMac}. */
export interface MacOptions {
  /** Reject multicast (and broadcast) addresses: required where the MAC names one interface. Default true. */
  unicast?: boolean;
}

/**
 * Parses a MAC address written as six hex pairs separated by ':' or '-'; returns it lower-case
 * with ':' separators. All-zero and (by default) multicast addresses are rejected.
 */
export function parseMac(mac: unknown, field = 'mac', options: MacOptions = {}): string {
  if (typeof mac !== 'string' || !/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/.test(mac)) {
    throw new ValidationError(field, mac, 'expected six hex pairs such as 52:54:00:12:34:56');
  }
  const norm = mac.toLowerCase().replace(/-/g, ':');
  if (norm === '00:00:00:00:00:00') throw new ValidationError(field, mac, 'the all-zero address is not usable');
  if ((options.unicast ?? true) && (parseInt(norm.slice(0, 2), 16) & 1) === 1) {
    throw new ValidationError(field, mac, 'is a multicast address; an interface needs a unicast one');
  }
  return norm;
}

/** Integer in [min, max]. */
export function validateInt(v: unknown, field: string, min: number, max: number): asserts v is number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ValidationError(field, v, `expected an integer from ${min} to ${max}`);
  }
}

/** An IP address; returns its family (4 or 6). `family` restricts it. */
export function validateIp(v: unknown, field: string, family?: 4 | 6): 4 | 6 {
  const f = typeof v === 'string' ? isIP(v) : 0;
  if (f === 0) throw new ValidationError(field, v, 'expected an IPv4 or IPv6 address');
  if (family && f !== family) throw new ValidationError(field, v, `expected an IPv${family} address`);
  return f as 4 | 6;
}

/**
 * A parsed prefix: the one prefix type, {@link Prefix} of the `ip` module.
 * @deprecated use `Prefix`.
 */
export type Cidr = Prefix;

/**
 * Parses `ADDRESS/LEN` (or a bare address when `defaultFull` is true, as a /32 or /128) into a
 * {@link Prefix}. Host bits may be set (an interface address such as 192.168.0.1/24 is valid).
 * The same as `ip.parsePrefix(v, { field, family, bare: defaultFull })`.
 */
export function parseCidr(v: unknown, field: string, options: { family?: 4 | 6; defaultFull?: boolean } = {}): Prefix {
  const o: ParsePrefixOptions = { field, bare: options.defaultFull === true };
  if (options.family !== undefined) o.family = options.family;
  return parsePrefix(v, o);
}
