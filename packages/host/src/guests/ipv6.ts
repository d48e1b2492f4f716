/**
 * IPv6 address arithmetic for guests: the modified EUI-64 interface identifier of a MAC
 * (RFC 4291 appendix A), the address SLAAC forms from it in a /64 (`ipv6: auto`), and the
 * link-local address the kernel gives an interface with that MAC. Pure.
 * @module
 */
import { SocketAddress, isIPv6 } from 'node:net';
import { parseMac, ValidationError } from '@vmhost/net';

/** 16 bytes of an IPv6 address in hex-group notation. Throws TypeError on bad input (validate first). */
export function ipv6Bytes(addr: string): Buffer {
  const s = addr; // IPv4-embedded forms (::ffff:a.b.c.d) are not used for guests
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((x) => parseInt(x, 16)));
  const dbl = s.indexOf('::');
  let groups: number[];
  if (dbl >= 0) {
    const head = parse(s.slice(0, dbl));
    const rest = parse(s.slice(dbl + 2));
    groups = [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
  } else {
    groups = parse(s);
  }
  if (groups.length !== 8 || groups.some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff)) throw new TypeError(`bad IPv6 address ${JSON.stringify(addr)}`);
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** The canonical text (RFC 5952) of 16 bytes. */
export function formatIpv6(bytes: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] as number) << 8) | (bytes[i + 1] as number)).toString(16));
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

/** The canonical text (RFC 5952) of an IPv6 address. */
export function canonicalIpv6(addr: string): string {
  return new SocketAddress({ address: addr, family: 'ipv6' }).address;
}

/**
 * The modified EUI-64 interface identifier of a 48-bit MAC: `ff:fe` inserted in the middle and
 * the universal/local bit (0x02 of the first byte) inverted. `52:54:00:12:34:56` → `5054:ff:fe12:3456`.
 * @throws {ValidationError} for a bad MAC.
 */
export function eui64InterfaceId(mac: string, field = 'mac'): Buffer {
  const m = Buffer.from(parseMac(mac, field).split(':').map((x) => parseInt(x, 16)));
  return Buffer.from([m[0]! ^ 0x02, m[1]!, m[2]!, 0xff, 0xfe, m[3]!, m[4]!, m[5]!]);
}

/**
 * The address SLAAC (RFC 4862 with EUI-64 identifiers, the Linux kernel's and systemd-networkd's
 * default) forms for `mac` in the /64 `prefix`, canonical. This is what `ipv6: auto` gives a VM;
 * the host hands it out by DHCPv6 and network-config (the RA keeps A=0; see docs/host-guest-ipv6.md).
 * @param prefix a /64, e.g. `2001:db8:1::/64` (host bits zero).
 * @throws {ValidationError} naming `prefix` or `mac`.
 */
export function slaacAddress(prefix: string, mac: string, fields: { prefix?: string; mac?: string } = {}): string {
  const pf = fields.prefix ?? 'prefix';
  const slash = typeof prefix === 'string' ? prefix.indexOf('/') : -1;
  if (slash < 0 || !isIPv6(prefix.slice(0, slash))) throw new ValidationError(pf, prefix, 'expected an IPv6 prefix such as 2001:db8:1::/64');
  if (prefix.slice(slash + 1) !== '64') throw new ValidationError(pf, prefix, 'SLAAC needs a /64 prefix');
  const net = ipv6Bytes(prefix.slice(0, slash));
  if (net.subarray(8).some((b) => b !== 0)) throw new ValidationError(pf, prefix, 'the host bits (last 64) must be zero');
  const out = Buffer.concat([net.subarray(0, 8), eui64InterfaceId(mac, fields.mac ?? 'mac')]);
  return formatIpv6(out);
}

/** The EUI-64 link-local address (`fe80::/64`) of an interface with this MAC (the kernel's default). */
export function linkLocalAddress(mac: string, field = 'mac'): string {
  return formatIpv6(Buffer.concat([Buffer.from([0xfe, 0x80, 0, 0, 0, 0, 0, 0]), eui64InterfaceId(mac, field)]));
}
