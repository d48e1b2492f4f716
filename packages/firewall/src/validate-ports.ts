/**
 * Validation of the VM ports of a {@link FirewallModel} (`ports`): names, MAC and addresses, and
 * that no two ports share an interface, a group, a MAC or an address (the point of anti-spoofing
 * is that a VM cannot claim what belongs to another). Pure; errors name the field.
 * @module
 */
import { ValidationError, ip, parseCidr, parseMac, validateIfName } from '@vmhost/net';
import type { Family, LinkLocalPolicy } from './model.js';

/** A port after validation. */
export interface NormalizedPort {
  /** Position in `ports`. */
  index: number;
  interface: string;
  group: string;
  /** Lower case, `:` separated. */
  mac: string;
  /** Canonical `ADDR/LEN` prefixes (a single address is `/32`). */
  ipv4: string[];
  /** Canonical `ADDR/LEN` prefixes (a single address is `/128`). */
  ipv6: string[];
  linkLocal: LinkLocalPolicy;
  isolation: boolean;
}

const PORT_KEYS: readonly string[] = ['interface', 'group', 'mac', 'ipv4', 'ipv6', 'linkLocal', 'isolation'];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Prefixes no VM may be given: they would let it use every source, or sources nobody owns. */
const REFUSED: Record<Family, Array<{ prefix: string; why: string }>> = {
  4: [
    { prefix: '0.0.0.0/8', why: 'is "this network" (0.0.0.0 is allowed for DHCP discovery anyway)' },
    { prefix: '224.0.0.0/3', why: 'is multicast or reserved, never a source address' },
    { prefix: '127.0.0.0/8', why: 'is loopback' },
  ],
  6: [
    { prefix: '::/128', why: 'is the unspecified address (allowed for duplicate address detection anyway)' },
    { prefix: 'ff00::/8', why: 'is multicast, never a source address' },
    { prefix: '::1/128', why: 'is loopback' },
  ],
};

/** {@link REFUSED} of `family` with each prefix parsed (once: every address of every port is checked). */
const refusedParsed: Partial<Record<Family, Array<{ parsed: ip.Prefix; why: string }>>> = {};
const refused = (family: Family): Array<{ parsed: ip.Prefix; why: string }> => (refusedParsed[family] ??= REFUSED[family].map((r) => ({ parsed: ip.parsePrefix(r.prefix), why: r.why })));

/** `ports[i]`, `ports[i].key` or `ports[i].key[k]`, built only when an error or a claim needs it. */
function portField(i: number, key?: string, k?: number): string {
  return key === undefined ? `ports[${i}]` : k === undefined ? `ports[${i}].${key}` : `ports[${i}].${key}[${k}]`;
}

/** The addresses of port `i`'s `key` (`ipv4`, `ipv6`) as canonical prefixes, each once. */
function addresses(v: unknown, i: number, key: 'ipv4' | 'ipv6', family: Family): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new ValidationError(portField(i, key), v, `expected an array of IPv${family} addresses or prefixes`);
  const out: string[] = [];
  for (let k = 0; k < v.length; k++) {
    const a: unknown = v[k];
    const c = parseCidr(a, portField(i, key, k), { family, defaultFull: true });
    if (c.prefixLength === 0) throw new ValidationError(portField(i, key, k), a, 'a /0 prefix would allow every source address');
    const p = ip.iptablesText(c);
    for (const r of refused(family)) {
      if (ip.overlaps(r.parsed, c)) throw new ValidationError(portField(i, key, k), a, r.why);
    }
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

interface Claim {
  port: number;
  /** Where in the port: `ipv4[k]` or `ipv6[k]`. */
  key: 'ipv4' | 'ipv6';
  k: number;
  prefix: string;
}

/** Whether `prefix` (iptables text) is one address: /32 or /128. */
const isHost = (prefix: string): boolean => prefix.endsWith('/32') || prefix.endsWith('/128');

/**
 * The addresses and prefixes the ports claimed so far. A VM port claims single addresses (looked up
 * in a map) and now and then a prefix (compared with each claim): linear in the number of ports,
 * where comparing every pair made validating 300 ports cost ~0.6 s.
 */
class Claims {
  private readonly hosts = new Map<string, Claim>();
  private readonly nets: Claim[] = [];

  /** A claim of another port than `port` that overlaps `prefix`. */
  overlapping(prefix: string, port: number): Claim | undefined {
    const other = (c: Claim | undefined): c is Claim => c !== undefined && c.port !== port;
    const net = this.nets.find((c) => other(c) && ip.overlaps(c.prefix, prefix));
    if (net) return net;
    if (isHost(prefix)) {
      const h = this.hosts.get(prefix);
      return other(h) ? h : undefined;
    }
    for (const h of this.hosts.values()) if (other(h) && ip.overlaps(prefix, h.prefix)) return h;
    return undefined;
  }

  add(c: Claim): void {
    if (isHost(c.prefix)) {
      if (!this.hosts.has(c.prefix)) this.hosts.set(c.prefix, c);
    } else this.nets.push(c);
  }
}

/**
 * Validates `ports` (undefined: none) and returns them normalized.
 * @throws {ValidationError} naming the first bad field, e.g. `ports[1].ipv4[0]`.
 */
export function validatePorts(v: unknown, validateGroup: (group: unknown, field: string) => void): NormalizedPort[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new ValidationError('ports', v, 'expected an array of ports');
  const out: NormalizedPort[] = [];
  const byIf = new Map<string, number>();
  const byGroup = new Map<string, number>();
  const byMac = new Map<string, number>();
  const claims = new Claims();
  for (let i = 0; i < v.length; i++) {
    const p: unknown = v[i];
    if (!isObject(p)) throw new ValidationError(portField(i), p, 'expected { interface, group, mac, ipv4?, ipv6? }');
    for (const k of Object.keys(p)) if (!PORT_KEYS.includes(k)) throw new ValidationError(portField(i, k), p[k], 'unknown field');
    validateIfName(p.interface, portField(i, 'interface'));
    if (/[+!*]/.test(p.interface)) {
      throw new ValidationError(portField(i, 'interface'), p.interface, "must not contain '+', '!' or '*' (wildcards and negation in ebtables and physdev matches)");
    }
    validateGroup(p.group, portField(i, 'group'));
    const mac = parseMac(p.mac, portField(i, 'mac'));
    const ipv4 = addresses(p.ipv4, i, 'ipv4', 4);
    const ipv6 = addresses(p.ipv6, i, 'ipv6', 6);
    let linkLocal: LinkLocalPolicy = 'eui64';
    if (p.linkLocal !== undefined) {
      if (p.linkLocal !== 'eui64' && p.linkLocal !== 'any') throw new ValidationError(portField(i, 'linkLocal'), p.linkLocal, "expected 'eui64' or 'any'");
      linkLocal = p.linkLocal;
    }
    let isolation = true;
    if (p.isolation !== undefined) {
      if (typeof p.isolation !== 'boolean') throw new ValidationError(portField(i, 'isolation'), p.isolation, 'expected true or false');
      isolation = p.isolation;
    }
    const iface = p.interface;
    const group = p.group as string;
    const dup = (map: Map<string, number>, key: string, what: string, value: unknown): void => {
      const j = map.get(key);
      if (j !== undefined) throw new ValidationError(portField(i, what), value, `ports[${j}] has the same ${what}`);
      map.set(key, i);
    };
    dup(byIf, iface, 'interface', p.interface);
    dup(byGroup, group, 'group', p.group);
    dup(byMac, mac, 'mac', p.mac);
    for (const [key, list] of [['ipv4', ipv4], ['ipv6', ipv6]] as const) {
      for (let k = 0; k < list.length; k++) {
        const other = claims.overlapping(list[k] as string, i);
        if (other) throw new ValidationError(portField(i, key, k), (p[key] as unknown[])[k], `overlaps ${portField(other.port, other.key, other.k)} (${other.prefix}) of another port`);
      }
      for (let k = 0; k < list.length; k++) claims.add({ port: i, key, k, prefix: list[k] as string });
    }
    out.push({ index: i, interface: iface, group, mac, ipv4, ipv6, linkLocal, isolation });
  }
  return out;
}
