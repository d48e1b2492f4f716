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
 * - ip6tables, table raw: a chain `VMHOST-<owner>-<group>-N` for the port's neighbour
 *   solicitations and advertisements ({@link portNdRules}: `-m u32` on the fields right after a
 *   40-byte IPv6 header; one behind extension headers is dropped), reached from the owner's
 *   `VMHOST-<owner>-RAW` (raw PREROUTING) with `-m physdev --physdev-in <port>`. ebtables cannot
 *   match the target address or the options; br_netfilter hands bridged IPv6 to ip6tables
 *   (`net.bridge.bridge-nf-call-ip6tables=1`).
 * @module
 */
import type { NormalizedPort } from '../validate-ports.js';
import { ip } from '@vmhost/net';

/** A valid `ADDR[/LEN]` as its masked network's bytes and length. */
function toPrefix(text: string): { bytes: Uint8Array; length: number } {
  const p = ip.toPrefix(text);
  return { bytes: ip.parseAddress(p.network.slice(0, p.network.indexOf('/'))), length: p.prefixLength };
}
const formatAddress = ip.formatAddressInetNtop;

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

/** u32 tests, as iptables-save prints them: ICMPv6 right after the IPv6 header (no extension header). */
const NEXT_ICMPV6 = '0x4>>0x8&0xff=0x3a';
/** The ICMPv6 type (byte 40). */
const icmpType = (t: number): string => `0x28>>0x18=0x${t.toString(16)}`;
/** No options: payload length 24 (ICMPv6 header and the target address). */
const NO_OPTIONS = '0x4>>0x10=0x18';
/** Source address (bytes 8-23) `::`. */
const FROM_UNSPECIFIED = ['0x8=0x0', '0xc=0x0', '0x10=0x0', '0x14=0x0'];

function word(b: Uint8Array, at: number): number {
  return (((b[at] ?? 0) << 24) | ((b[at + 1] ?? 0) << 16) | ((b[at + 2] ?? 0) << 8) | (b[at + 3] ?? 0)) >>> 0;
}

/** Tests that the 16 bytes at offset 48 (the target of a neighbour solicitation or advertisement) lie in `prefix`. */
function targetIn(prefix: string): string[] {
  const p = toPrefix(prefix);
  const tests: string[] = [];
  for (let w = 0; w < 4; w++) {
    const bits = Math.max(0, Math.min(32, p.length - 32 * w));
    if (bits === 0) break;
    const off = `0x${(0x30 + 4 * w).toString(16)}`;
    const value = `0x${word(p.bytes, 4 * w).toString(16)}`;
    tests.push(bits === 32 ? `${off}=${value}` : `${off}&0x${((0xffffffff << (32 - bits)) >>> 0).toString(16)}=${value}`);
  }
  return tests;
}

/** Tests that the first option (bytes 64-71) is a link-layer address option of `type` holding `mac`. */
function firstOptionIs(type: 1 | 2, mac: string): string[] {
  const m = Uint8Array.from(mac.split(':').map((h) => parseInt(h, 16)));
  const opt = Uint8Array.from([type, 1, ...m]);
  return [`0x40=0x${word(opt, 0).toString(16)}`, `0x44=0x${word(opt, 4).toString(16)}`];
}

/** The match of u32 `tests` (joined by `&&`). */
const u32 = (tests: string): string => `-m u32 --u32 "${tests}"`;

/**
 * The rules of a port's ip6tables chain (`-N`), which its neighbour solicitations (135) and
 * advertisements (136) pass: an advertisement only for one of the VM's addresses, and with no
 * options or the VM's own MAC as its first (target link-layer address) option; a solicitation
 * from `::` (duplicate address detection), or with no options, or the VM's own MAC as its first
 * (source link-layer address) option. So neighbour discovery cannot bind another VM's address,
 * or the VM's own address to another's MAC (the ARP rules' `--arp-ip-src`/`--arp-mac-src`).
 */
export function portNdRules(p: NormalizedPort): string[] {
  const own = [...p.ipv6, p.linkLocal === 'any' ? LINK_LOCAL : `${eui64LinkLocal(p.mac)}/128`];
  const na = `${NEXT_ICMPV6}&&${icmpType(136)}`;
  const ns = `${NEXT_ICMPV6}&&${icmpType(135)}`;
  const tla = firstOptionIs(2, p.mac).join('&&');
  const rules: string[] = [];
  for (const a of own) {
    const target = targetIn(a).join('&&');
    rules.push(`${u32(`${na}&&${target}&&${NO_OPTIONS}`)} -j RETURN`);
    rules.push(`${u32(`${na}&&${target}&&${tla}`)} -j RETURN`);
  }
  rules.push(`${u32(`${ns}&&${FROM_UNSPECIFIED.join('&&')}`)} -j RETURN`);
  rules.push(`${u32(`${ns}&&${NO_OPTIONS}`)} -j RETURN`);
  rules.push(`${u32(`${ns}&&${firstOptionIs(1, p.mac).join('&&')}`)} -j RETURN`);
  rules.push('-j DROP');
  return rules;
}

/** The rules of the owner's raw chain that send a port's neighbour solicitations and advertisements to its `-N` chain. */
export function portNdDispatch(p: NormalizedPort, chain: string): string[] {
  return [135, 136].map((t) => `-p ipv6-icmp -m physdev --physdev-in ${p.interface} -m icmp6 --icmpv6-type ${t} -j ${chain}`);
}
