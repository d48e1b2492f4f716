/**
 * The dnsmasq lines that give guests their IPv6 (router advertisements + stateful DHCPv6 matched by
 * MAC) and every VM its DNS names (A, AAAA and the reverse entries). Pure: the caller adds them
 * to a dnsmasq.conf with the interface, DHCPv4 range, files, etc. See docs/host-guest-ipv6.md.
 *
 * ```ts
 * renderGuestDnsmasqLines({ interface: 'br0', domain: 'lan',
 *   ipv6: { prefix: '2001:db8:1::/64', dnsServer: '2001:db8:1::1' },
 *   hosts: [{ name: 'web', mac: '52:54:00:12:34:56', ipv4: '198.51.100.10', ipv6: '2001:db8:1::100' }] });
 * // enable-ra
 * // dhcp-range=2001:db8:1::,static,off-link,64,1h      RA: M=1 O=1, prefix L=0 A=0
 * // ra-param=br0,60,1800
 * // dhcp-option=option6:dns-server,[2001:db8:1::1]    DHCPv6 option 23 and RA RDNSS
 * // dhcp-option=option6:domain-search,lan             DHCPv6 option 24 and RA DNSSL
 * // dhcp-host=52:54:00:12:34:56,198.51.100.10,[2001:db8:1::100],web
 * // host-record=web.lan,web,198.51.100.10,2001:db8:1::100
 * ```
 * @module
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ip, parseMac, validateIfName, validateInt, ValidationError } from '@vmhost/net';
import { LEASE_TIME_RE } from '../spec/schema.js';

/** One VM as dnsmasq knows it. */
export interface GuestDnsHost {
  /** DNS label: `name` and `name.domain` resolve to its addresses. */
  name: string;
  /** The NIC's MAC (DHCPv4 and DHCPv6 leases are matched by it). */
  mac: string;
  ipv4?: string;
  /**
   * Its fixed IPv6 address (no prefix length: a /128 in the guest). Inside `ipv6.prefix` it is
   * also leased by DHCPv6; outside it (or without `ipv6`) it is a DNS name only.
   */
  ipv6?: string;
}

/** Router advertisements and stateful DHCPv6 on the bridge for the VMs' /64 (docs/host-guest-ipv6.md). */
export interface GuestIpv6Options {
  /** The VM prefix, a /64 (dnsmasq's minimum); the bridge must hold an address inside it. */
  prefix: string;
  /** The DNS server announced (RDNSS and DHCPv6 option 23): the bridge's address in the prefix. Default: dnsmasq's default (the bridge's link-local address in the RA, none in DHCPv6). */
  dnsServer?: string;
  /** DHCPv6 lease time (`1h`, `infinite`, seconds). Default `1h`. */
  leaseTime?: string;
  /** Seconds between unsolicited RAs. Default 60 (dnsmasq's own default grows to 600 s). */
  raIntervalS?: number;
  /** Router lifetime in the RA, seconds (the guests' default route expires after it without a new RA). Default 1800. */
  routerLifetimeS?: number;
}

/** What {@link renderGuestDnsmasqLines} takes. */
export interface GuestDnsmasqOptions {
  /** The bridge dnsmasq serves (RA parameters are per interface). */
  interface: string;
  /** Local domain (names also as `name.domain`; the first name of a host-record is its PTR). */
  domain?: string;
  /** Router advertisements and DHCPv6 for the VM prefix. Left out: no IPv6 service. */
  ipv6?: GuestIpv6Options;
  hosts: readonly GuestDnsHost[];
}

const LABEL_RE = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

/**
 * Checks a DNS name of one or more labels (letters, digits, '-'; no leading or trailing '-'), at
 * most 253 bytes; with `single`, one label only (a host name without its domain).
 * @throws {ValidationError} naming `field`.
 */
export function validateDnsName(v: unknown, field: string, single: boolean): asserts v is string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 253) throw new ValidationError(field, v, 'expected a DNS name of 1-253 characters');
  const labels = v.split('.');
  if (single && labels.length !== 1) throw new ValidationError(field, v, 'expected a single DNS label (no dots)');
  for (const l of labels) {
    if (!LABEL_RE.test(l)) throw new ValidationError(field, v, "expected labels of 1-63 letters, digits and '-', not starting or ending with '-'");
  }
}

/**
 * The lines (without newlines) for `o`, in a fixed order. Validates first: every error names its
 * field (`hosts[1].ipv6`, `ipv6.prefix`, ...).
 * @throws {ValidationError}
 */
export function renderGuestDnsmasqLines(o: GuestDnsmasqOptions): string[] {
  if (!o || typeof o !== 'object') throw new ValidationError('options', o, 'expected an object');
  validateIfName(o.interface, 'interface');
  if (o.domain !== undefined) validateDnsName(o.domain, 'domain', false);
  const lines: string[] = [];
  let prefix: string | undefined;
  if (o.ipv6 !== undefined) {
    const v = o.ipv6;
    if (!v || typeof v !== 'object') throw new ValidationError('ipv6', v, 'expected { prefix, dnsServer? }');
    const m = typeof v.prefix === 'string' ? /^([0-9a-f:]+)\/64$/i.exec(v.prefix) : null;
    if (!m || !isIPv6(m[1]!)) throw new ValidationError('ipv6.prefix', v.prefix, 'expected an IPv6 /64 such as 2001:db8:1::/64');
    const p = ip.parsePrefix(v.prefix, { field: 'ipv6.prefix', family: 6 });
    if (p.cidr !== p.network) throw new ValidationError('ipv6.prefix', v.prefix, 'the host bits must be zero');
    prefix = p.network;
    const lease = v.leaseTime ?? '1h';
    if (typeof lease !== 'string' || !LEASE_TIME_RE.test(lease)) throw new ValidationError('ipv6.leaseTime', v.leaseTime, "expected 'infinite' or a number with an optional unit s, m, h, d, w");
    const interval = v.raIntervalS ?? 60;
    validateInt(interval, 'ipv6.raIntervalS', 4, 1800);
    const lifetime = v.routerLifetimeS ?? 1800;
    validateInt(lifetime, 'ipv6.routerLifetimeS', interval, 9000);
    lines.push(
      'enable-ra',
      // static: addresses only from dhcp-host (by MAC); off-link: the prefix is announced with L=0
      // and, without slaac, A=0; a DHCPv6 range makes dnsmasq set M and O.
      `dhcp-range=${ip.canonicalAddress(m[1]!)},static,off-link,64,${lease}`,
      `ra-param=${o.interface},${interval},${lifetime}`,
    );
    if (v.dnsServer !== undefined) {
      if (typeof v.dnsServer !== 'string' || !isIPv6(v.dnsServer)) throw new ValidationError('ipv6.dnsServer', v.dnsServer, 'expected an IPv6 address');
      lines.push(`dhcp-option=option6:dns-server,[${ip.canonicalAddress(v.dnsServer)}]`);
    }
    if (o.domain !== undefined) lines.push(`dhcp-option=option6:domain-search,${o.domain}`);
  }
  if (!Array.isArray(o.hosts)) throw new ValidationError('hosts', o.hosts, 'expected an array');
  const seen = new Map<string, string>();
  const unique = (key: string, field: string, value: string): void => {
    const prev = seen.get(key);
    if (prev !== undefined) throw new ValidationError(field, value, `the same as ${prev}`);
    seen.set(key, field);
  };
  const dhcp: string[] = [];
  const records: string[] = [];
  o.hosts.forEach((h, i) => {
    const f = `hosts[${i}]`;
    if (!h || typeof h !== 'object') throw new ValidationError(f, h, 'expected { name, mac, ipv4?, ipv6? }');
    validateDnsName(h.name, `${f}.name`, true);
    const mac = parseMac(h.mac, `${f}.mac`);
    unique(`name:${h.name.toLowerCase()}`, `${f}.name`, h.name);
    unique(`mac:${mac}`, `${f}.mac`, h.mac);
    const parts: string[] = [mac];
    const addrs: string[] = [];
    if (h.ipv4 !== undefined) {
      if (typeof h.ipv4 !== 'string' || !isIPv4(h.ipv4)) throw new ValidationError(`${f}.ipv4`, h.ipv4, 'expected an IPv4 address');
      unique(`ip:${h.ipv4}`, `${f}.ipv4`, h.ipv4);
      parts.push(h.ipv4);
      addrs.push(h.ipv4);
    }
    if (h.ipv6 !== undefined) {
      if (typeof h.ipv6 !== 'string' || !isIPv6(h.ipv6) || h.ipv6.includes('%')) throw new ValidationError(`${f}.ipv6`, h.ipv6, 'expected an IPv6 address (no prefix length)');
      const a = ip.canonicalAddress(h.ipv6);
      unique(`ip:${a}`, `${f}.ipv6`, h.ipv6);
      // Only an address of the prefix dnsmasq serves can be leased; others are DNS names only.
      if (prefix && ip.contains(prefix, a)) parts.push(`[${a}]`);
      addrs.push(a);
    }
    dhcp.push(`dhcp-host=${[...parts, h.name].join(',')}`);
    if (addrs.length) records.push(`host-record=${o.domain !== undefined ? `${h.name}.${o.domain},${h.name}` : h.name},${addrs.join(',')}`);
  });
  return [...lines, ...dhcp, ...records];
}
