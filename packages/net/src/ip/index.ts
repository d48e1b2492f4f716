/**
 * IP addresses and prefixes: parse, canonical text (RFC 5952, and the text iptables-save prints),
 * mask and network, contains, overlaps, the nth address, host checks, ordering, special-purpose
 * ranges. Pure; exported as `ip`.
 *
 * ```ts
 * import { ip } from '@vmhost/net';
 * const p = ip.parsePrefix('192.168.0.1/24');   // { address: '192.168.0.1', network: '192.168.0.0/24', ... }
 * ip.nth(p, 100);                                // '192.168.0.100'
 * ip.contains('2001:db8::/32', '2001:db8::1');   // true
 * ```
 * @module
 */
export { parseAddress, formatAddress, formatAddressInetNtop, canonicalAddress, compare, type IpFamily } from './address.js';
export { specialRange, type SpecialKind, type SpecialRange } from './special.js';
export {
  parsePrefix, makePrefix, toPrefix, netmask, networkAddress, lastAddress, size, contains, overlaps, nth, isHostAddress, iptablesText,
  type Prefix, type PrefixLike, type ParsePrefixOptions,
} from './prefix.js';
