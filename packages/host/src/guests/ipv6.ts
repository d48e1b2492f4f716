/**
 * IPv6 address arithmetic for guests: the modified EUI-64 interface identifier of a MAC
 * (RFC 4291 appendix A), the address SLAAC forms from it in a /64 (`ipv6: auto`), and the
 * link-local address the kernel gives an interface with that MAC. Pure.
 * @module
 */
import { ip, parseMac, ValidationError, type Prefix } from '@vmhost/net';

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
  let p: Prefix;
  try {
    p = ip.parsePrefix(prefix, { field: pf, family: 6 });
  } catch {
    throw new ValidationError(pf, prefix, 'expected an IPv6 prefix such as 2001:db8:1::/64');
  }
  if (p.prefixLength !== 64) throw new ValidationError(pf, prefix, 'SLAAC needs a /64 prefix');
  if (p.cidr !== p.network) throw new ValidationError(pf, prefix, 'the host bits (last 64) must be zero');
  const out = new Uint8Array(16);
  out.set(ip.parseAddress(p.address).subarray(0, 8));
  out.set(eui64InterfaceId(mac, fields.mac ?? 'mac'), 8);
  return ip.formatAddress(out);
}

/** The EUI-64 link-local address (`fe80::/64`) of an interface with this MAC (the kernel's default). */
export function linkLocalAddress(mac: string, field = 'mac'): string {
  return ip.formatAddress(Buffer.concat([Buffer.from([0xfe, 0x80, 0, 0, 0, 0, 0, 0]), eui64InterfaceId(mac, field)]));
}
