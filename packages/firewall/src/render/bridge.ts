/**
 * The rules of the VM ports (anti-spoofing and guards, see {@link Port}), in the exact text that
 * ebtables-save and ip6tables-save print back. Pure.
 *
 * Per port with isolation on:
 * - ebtables, table nat: a chain `VMHOST-<owner>-<group>-S` (policy DROP) reached by
 *   `-i <port> -j ...-S` from PREROUTING, so every frame the VM sends into the bridge, to the host
 *   or to another port, passes it once, before the bridge decides where it goes. Guards first
 *   (DHCP/DHCPv6 server replies, router advertisements, redirects: DROP), then what the VM may
 *   send (RETURN); everything else, other EtherTypes included, meets the DROP policy.
 * - ip6tables, table raw: a chain `VMHOST-<owner>-<group>-N` that lets a neighbour advertisement
 *   from the port through only when its target is one of the VM's addresses (`-m u32` on the
 *   target field, right after a 40-byte IPv6 header; an advertisement behind extension headers is
 *   dropped), reached from the owner's `VMHOST-<owner>-RAW` (raw PREROUTING) with
 *   `-m physdev --physdev-in <port>`. ebtables cannot match the target address; br_netfilter
 *   hands bridged IPv6 to ip6tables (`net.bridge.bridge-nf-call-ip6tables=1`).
 * @module
 */
import type { NormalizedPort } from '../validate-ports.js';
import { formatAddress, toPrefix } from './addr.js';

/** The modified EUI-64 link-local address of a MAC, as inet_ntop writes it (fe80::5054:ff:fe12:3456). */
export function eui64LinkLocal(mac: string): string {
  const m = mac.split(':').map((h) => parseInt(h, 16));
  const b = new Uint8Array(16);
  b[0] = 0xfe;
  b[1] = 0x80;
  b.set([(m[0] ?? 0) ^ 0x02, m[1] ?? 0, m[2] ?? 0, 0xff, 0xfe, m[3] ?? 0, m[4] ?? 0, m[5] ?? 0], 8);
  return formatAddress(b);
}

/** A prefix as ebtables-save prints an `--ip-src`/`--ip6-src` value: the address alone for a host prefix. */
function ebAddr(prefix: string): string {
  const p = toPrefix(prefix);
  const text = formatAddress(p.bytes);
  return p.length === p.bytes.length * 8 ? text : `${text}/${p.length}`;
}

const LINK_LOCAL = 'fe80::/10';

/** The rules of a port's ebtables chain (`-S`), each the text after `-A CHAIN `. */
export function portBridgeRules(p: NormalizedPort): string[] {
  const r: string[] = [
    `-s ! ${p.mac} -j DROP`,
    // guards: what a VM never sends, whatever its addresses
    '-p IPv4 --ip-proto udp --ip-sport 67 -j DROP',
    '-p IPv4 --ip-proto icmp --ip-icmp-type redirect -j DROP',
    '-p IPv6 --ip6-proto udp --ip6-sport 547 -j DROP',
    '-p IPv6 --ip6-proto ipv6-icmp --ip6-icmp-type router-advertisement -j DROP',
    '-p IPv6 --ip6-proto ipv6-icmp --ip6-icmp-type redirect -j DROP',
    `-p ARP --arp-mac-src ! ${p.mac} -j DROP`,
  ];
  for (const a of p.ipv4) r.push(`-p ARP --arp-ip-src ${ebAddr(a)} -j RETURN`);
  // ARP probes (RFC 5227) have sender 0.0.0.0: they announce nothing
  r.push('-p ARP --arp-op Request --arp-ip-src 0.0.0.0 -j RETURN');
  for (const a of p.ipv4) r.push(`-p IPv4 --ip-src ${ebAddr(a)} -j RETURN`);
  r.push('-p IPv4 --ip-src 0.0.0.0 --ip-proto udp --ip-sport 68 --ip-dport 67 -j RETURN');
  for (const a of p.ipv6) r.push(`-p IPv6 --ip6-src ${ebAddr(a)} -j RETURN`);
  r.push(`-p IPv6 --ip6-src ${p.linkLocal === 'any' ? LINK_LOCAL : eui64LinkLocal(p.mac)} -j RETURN`);
  // the unspecified source: duplicate address detection, MLDv2 reports, router solicitations
  r.push('-p IPv6 --ip6-src :: --ip6-dst ff02::1:ff00:0/104 --ip6-proto ipv6-icmp --ip6-icmp-type neighbour-solicitation -j RETURN');
  r.push('-p IPv6 --ip6-src :: --ip6-dst ff02::16 --ip6-proto ipv6-icmp --ip6-icmp-type 143/0:255 -j RETURN');
  r.push('-p IPv6 --ip6-src :: --ip6-dst ff02::2 --ip6-proto ipv6-icmp --ip6-icmp-type router-solicitation -j RETURN');
  return r;
}

/**
 * A u32 test that the 16 bytes at offset 48 of the IPv6 packet (the target of a neighbour
 * advertisement directly after the IPv6 header) lie in `prefix`, as iptables-save prints it.
 */
function naTargetMatch(prefix: string): string {
  const p = toPrefix(prefix);
  const tests = ['0x4>>0x8&0xff=0x3a']; // next header: ICMPv6, no extension header
  for (let w = 0; w < 4; w++) {
    const bits = Math.max(0, Math.min(32, p.length - 32 * w));
    if (bits === 0) break;
    const word = (((p.bytes[4 * w] ?? 0) << 24) | ((p.bytes[4 * w + 1] ?? 0) << 16) | ((p.bytes[4 * w + 2] ?? 0) << 8) | (p.bytes[4 * w + 3] ?? 0)) >>> 0;
    const off = `0x${(0x30 + 4 * w).toString(16)}`;
    if (bits === 32) {
      tests.push(`${off}=0x${word.toString(16)}`);
    } else {
      const mask = (0xffffffff << (32 - bits)) >>> 0;
      tests.push(`${off}&0x${mask.toString(16)}=0x${word.toString(16)}`);
    }
  }
  return `-m u32 --u32 "${tests.join('&&')}"`;
}

/** The rules of a port's ip6tables chain (`-N`): the neighbour-advertisement targets it may use. */
export function portNaRules(p: NormalizedPort): string[] {
  const own = [...p.ipv6, p.linkLocal === 'any' ? LINK_LOCAL : `${eui64LinkLocal(p.mac)}/128`];
  return [...own.map((a) => `${naTargetMatch(a)} -j RETURN`), '-j DROP'];
}

/** The rule of the owner's raw chain that sends a port's neighbour advertisements to its `-N` chain. */
export function portNaDispatch(p: NormalizedPort, chain: string): string {
  return `-p ipv6-icmp -m physdev --physdev-in ${p.interface} -m icmp6 --icmpv6-type 136 -j ${chain}`;
}
