/**
 * Special-purpose address ranges (RFC 6890 and the registries it set up) that are not usable as a
 * host's own unicast address, a subnet to hand out, or a server to talk to: what the "this
 * network", loopback, link-local, multicast, limited broadcast, reserved (240/4) and IPv4-mapped
 * ranges are. Pure.
 * @module
 */
import { overlaps, toPrefix, type PrefixLike } from './prefix.js';

/** What a special-purpose range is for. */
export type SpecialKind = 'unspecified' | 'loopback' | 'link-local' | 'multicast' | 'broadcast' | 'reserved' | 'ipv4-mapped';

/** A special-purpose range: its kind and its prefix text. */
export interface SpecialRange {
  readonly kind: SpecialKind;
  /** The range, such as `127.0.0.0/8`. */
  readonly range: string;
}

/** In lookup order (the broadcast address before the reserved /4 that holds it). */
const RANGES: readonly SpecialRange[] = [
  { kind: 'unspecified', range: '0.0.0.0/8' }, // "this network" (RFC 1122 3.2.1.3); 0.0.0.0 itself
  { kind: 'loopback', range: '127.0.0.0/8' },
  { kind: 'link-local', range: '169.254.0.0/16' },
  { kind: 'multicast', range: '224.0.0.0/4' },
  { kind: 'broadcast', range: '255.255.255.255/32' },
  { kind: 'reserved', range: '240.0.0.0/4' },
  { kind: 'unspecified', range: '::/128' },
  { kind: 'loopback', range: '::1/128' },
  { kind: 'ipv4-mapped', range: '::ffff:0:0/96' },
  { kind: 'link-local', range: 'fe80::/10' },
  { kind: 'multicast', range: 'ff00::/8' },
];

/**
 * The special-purpose range that an address (or any address of a prefix) falls in, or undefined
 * for an ordinary unicast address or a prefix clear of every such range. Private (RFC 1918, ULA)
 * and documentation ranges are ordinary here.
 *
 * ```ts
 * ip.specialRange('127.0.0.1');        // { kind: 'loopback', range: '127.0.0.0/8' }
 * ip.specialRange('169.0.0.0/8');      // { kind: 'link-local', range: '169.254.0.0/16' }
 * ip.specialRange('192.168.0.1/24');   // undefined
 * ```
 * @throws {ValidationError} when `p` is not an address or prefix.
 */
export function specialRange(p: PrefixLike): SpecialRange | undefined {
  const q = toPrefix(p);
  return (PARSED ??= RANGES.map((r) => ({ r, p: toPrefix(r.range) }))).find((x) => overlaps(q, x.p))?.r;
}

/** {@link RANGES} parsed, once (every address of a host file is looked up). */
let PARSED: Array<{ r: SpecialRange; p: ReturnType<typeof toPrefix> }> | undefined;
