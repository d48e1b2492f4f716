// Hand-built Ethernet frames for the isolation tests (ARP, IPv4/UDP/ICMP, IPv6/UDP/ICMPv6 with
// neighbour discovery, router advertisements, redirects, DHCP replies), with correct checksums so
// that a receiving kernel processes them. Pure; sent and captured by packet.py.
import { ip as netIp } from '@vmhost/net';

export type Bytes = Uint8Array;

const cat = (...parts: Bytes[]): Bytes => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
const u8 = (...xs: number[]): Bytes => Uint8Array.from(xs);
const u16 = (x: number): Bytes => u8((x >> 8) & 0xff, x & 0xff);
const u32 = (x: number): Bytes => u8((x >>> 24) & 0xff, (x >> 16) & 0xff, (x >> 8) & 0xff, x & 0xff);

/** `52:54:00:..` → 6 bytes. */
export function mac(text: string): Bytes {
  return Uint8Array.from(text.split(':').map((h) => parseInt(h, 16)));
}
/** An IPv4 or IPv6 address → 4 or 16 bytes. */
export function ip(text: string): Bytes {
  return netIp.parseAddress(text);
}
export function hex(b: Bytes): string {
  return Buffer.from(b).toString('hex');
}

function checksum(data: Bytes): number {
  let sum = 0;
  for (let i = 0; i < data.length; i += 2) sum += ((data[i] ?? 0) << 8) | (data[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export const BROADCAST = 'ff:ff:ff:ff:ff:ff';

export function ether(dst: string, src: string, type: number, payload: Bytes): Bytes {
  return cat(mac(dst), mac(src), u16(type), payload);
}

/** An ARP packet (Ethernet/IPv4): op 1 request, 2 reply. */
export function arp(o: { op: 1 | 2; sha: string; spa: string; tha: string; tpa: string }): Bytes {
  return cat(u16(1), u16(0x0800), u8(6, 4), u16(o.op), mac(o.sha), ip(o.spa), mac(o.tha), ip(o.tpa));
}

export function ipv4(src: string, dst: string, proto: number, payload: Bytes, ttl = 64): Bytes {
  const h = cat(u8(0x45, 0), u16(20 + payload.length), u16(0x1234), u16(0), u8(ttl, proto), u16(0), ip(src), ip(dst));
  h.set(u16(checksum(h)), 10);
  return cat(h, payload);
}

function pseudo(src: string, dst: string, proto: number, len: number): Bytes {
  const s = ip(src);
  return s.length === 4 ? cat(s, ip(dst), u8(0, proto), u16(len)) : cat(s, ip(dst), u32(len), u8(0, 0, 0, proto));
}

/** A UDP datagram with its checksum for the given addresses. */
export function udp(src: string, dst: string, sport: number, dport: number, data: Bytes): Bytes {
  const d = cat(u16(sport), u16(dport), u16(8 + data.length), u16(0), data);
  let c = checksum(cat(pseudo(src, dst, 17, d.length), d));
  if (c === 0) c = 0xffff;
  d.set(u16(c), 6);
  return d;
}

/** An ICMPv4 message (type, code, the rest after the checksum). */
export function icmp4(type: number, code: number, rest: Bytes): Bytes {
  const d = cat(u8(type, code), u16(0), rest);
  d.set(u16(checksum(d)), 2);
  return d;
}

/** An ICMPv6 message with its checksum (pseudo-header of `src`/`dst`). */
export function icmp6(src: string, dst: string, type: number, code: number, rest: Bytes): Bytes {
  const d = cat(u8(type, code), u16(0), rest);
  d.set(u16(checksum(cat(pseudo(src, dst, 58, d.length), d))), 2);
  return d;
}

/**
 * An IPv6 packet. `destOpts` puts a Destination Options header (one PadN option, 8 bytes) before
 * the payload: how an attacker hides an upper-layer header from a match that reads `nexthdr` only.
 */
export function ipv6(src: string, dst: string, next: number, payload: Bytes, o: { hopLimit?: number; destOpts?: boolean } = {}): Bytes {
  let nh = next;
  let body = payload;
  if (o.destOpts) {
    body = cat(u8(next, 0, 1, 4, 0, 0, 0, 0), payload);
    nh = 60;
  }
  return cat(u8(0x60, 0, 0, 0), u16(body.length), u8(nh, o.hopLimit ?? 64), ip(src), ip(dst), body);
}

/** The solicited-node multicast address of `addr` and its Ethernet group address. */
export function solicitedNode(addr: string): { ip: string; mac: string } {
  const b = ip(addr);
  const t = [...b.subarray(13)].map((x) => x.toString(16).padStart(2, '0'));
  return { ip: `ff02::1:ff${t[0]}:${t[1]}${t[2]}`, mac: `33:33:ff:${t.join(':')}` };
}

/** Ethernet group address of an IPv6 multicast address. */
export function multicastMac(addr: string): string {
  const b = ip(addr);
  return `33:33:${[...b.subarray(12)].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
}

// --- whole frames -------------------------------------------------------------------------

export interface V4Frame {
  srcMac: string;
  dstMac?: string;
  src: string;
  dst: string;
}

/** A UDP datagram in an Ethernet frame (IPv4 or IPv6 by the addresses). */
export function udpFrame(o: V4Frame & { sport: number; dport: number; data: Bytes }): Bytes {
  const v6 = o.src.includes(':');
  const seg = udp(o.src, o.dst, o.sport, o.dport, o.data);
  const dstMac = o.dstMac ?? (v6 ? multicastMac(o.dst) : BROADCAST);
  return v6 ? ether(dstMac, o.srcMac, 0x86dd, ipv6(o.src, o.dst, 17, seg)) : ether(dstMac, o.srcMac, 0x0800, ipv4(o.src, o.dst, 17, seg));
}

/** A gratuitous ARP (a reply broadcast, sender = target = `ip`). */
export function gratuitousArp(srcMac: string, addr: string, senderMac = srcMac): Bytes {
  return ether(BROADCAST, srcMac, 0x0806, arp({ op: 2, sha: senderMac, spa: addr, tha: BROADCAST, tpa: addr }));
}

/** An ARP request. */
export function arpRequest(srcMac: string, spa: string, tpa: string): Bytes {
  return ether(BROADCAST, srcMac, 0x0806, arp({ op: 1, sha: srcMac, spa, tha: '00:00:00:00:00:00', tpa }));
}

/** A neighbour advertisement for `target` (override flag set, target link-layer option `tlla`). */
export function neighbourAdvert(o: { srcMac: string; src: string; dst?: string; target: string; tlla?: string; solicited?: boolean; destOpts?: boolean }): Bytes {
  const dst = o.dst ?? 'ff02::1';
  const flags = (o.solicited ? 0x40 : 0) | 0x20;
  const opt = cat(u8(2, 1), mac(o.tlla ?? o.srcMac));
  const msg = icmp6(o.src, dst, 136, 0, cat(u8(flags, 0, 0, 0), ip(o.target), opt));
  return ether(multicastMac(dst), o.srcMac, 0x86dd, ipv6(o.src, dst, 58, msg, { hopLimit: 255, ...(o.destOpts ? { destOpts: true } : {}) }));
}

/**
 * A neighbour solicitation for `target`, with a source link-layer option (`slla`, default the
 * sender's MAC); from `::` (DAD) without one, or with a nonce option (RFC 7527, as Linux sends).
 */
export function neighbourSolicit(o: { srcMac: string; src: string; target: string; dst?: string; slla?: string; nonce?: boolean }): Bytes {
  const sn = solicitedNode(o.target);
  const dst = o.dst ?? sn.ip;
  const opt = o.src === '::' ? (o.nonce ? u8(14, 1, 1, 2, 3, 4, 5, 6) : new Uint8Array(0)) : cat(u8(1, 1), mac(o.slla ?? o.srcMac));
  const msg = icmp6(o.src, dst, 135, 0, cat(u32(0), ip(o.target), opt));
  return ether(o.dst ? multicastMac(o.dst) : sn.mac, o.srcMac, 0x86dd, ipv6(o.src, dst, 58, msg, { hopLimit: 255 }));
}

/** A router advertisement announcing `prefix`/64 (on-link, autonomous) with a default route. */
export function routerAdvert(o: { srcMac: string; src: string; prefix: string; destOpts?: boolean }): Bytes {
  const dst = 'ff02::1';
  const pio = cat(u8(3, 4, 64, 0xc0), u32(86400), u32(14400), u32(0), ip(o.prefix));
  const slla = cat(u8(1, 1), mac(o.srcMac));
  const msg = icmp6(o.src, dst, 134, 0, cat(u8(64, 0), u16(1800), u32(0), u32(0), slla, pio));
  return ether(multicastMac(dst), o.srcMac, 0x86dd, ipv6(o.src, dst, 58, msg, { hopLimit: 255, ...(o.destOpts ? { destOpts: true } : {}) }));
}

/** An ICMPv6 redirect telling `dst` to send traffic for `target` to `better` (link-local). */
export function redirect6(o: { srcMac: string; src: string; dst: string; dstMac: string; better: string; target: string }): Bytes {
  const msg = icmp6(o.src, o.dst, 137, 0, cat(u32(0), ip(o.better), ip(o.target)));
  return ether(o.dstMac, o.srcMac, 0x86dd, ipv6(o.src, o.dst, 58, msg, { hopLimit: 255 }));
}

/** An ICMPv4 redirect (type 5, code 1: for the host) to `dst`, gateway `gateway`. */
export function redirect4(o: { srcMac: string; dstMac: string; src: string; dst: string; gateway: string; about: string }): Bytes {
  // the quoted original datagram: an IPv4 header from `dst` to `about` and 8 bytes
  const quoted = ipv4(o.dst, o.about, 17, udp(o.dst, o.about, 1000, 53, new Uint8Array(0)));
  const msg = icmp4(5, 1, cat(ip(o.gateway), quoted.subarray(0, 28)));
  return ether(o.dstMac, o.srcMac, 0x0800, ipv4(o.src, o.dst, 1, msg));
}

/** A DHCPv4 offer (BOOTP reply, option 53 = 2) from a server at `server`, broadcast to port 68. */
export function dhcpOffer(o: { srcMac: string; server: string; yiaddr: string; chaddr: string }): Bytes {
  const bootp = new Uint8Array(240);
  bootp.set(u8(2, 1, 6, 0), 0);
  bootp.set(u32(0x1234abcd), 4);
  bootp.set(ip(o.yiaddr), 16);
  bootp.set(ip(o.server), 20);
  bootp.set(mac(o.chaddr), 28);
  bootp.set(u32(0x63825363), 236);
  const opts = cat(u8(53, 1, 2), u8(54, 4), ip(o.server), u8(1, 4, 255, 255, 255, 0), u8(3, 4), ip(o.server), u8(255));
  return udpFrame({ srcMac: o.srcMac, src: o.server, dst: '255.255.255.255', sport: 67, dport: 68, data: cat(bootp, opts) });
}

/** A DHCPv6 Advertise (type 2) from a server's link-local address to a client, port 547 → 546. */
export function dhcp6Advertise(o: { srcMac: string; src: string; dst: string; dstMac: string }): Bytes {
  return udpFrame({ srcMac: o.srcMac, dstMac: o.dstMac, src: o.src, dst: o.dst, sport: 547, dport: 546, data: u8(2, 0x12, 0x34, 0x56) });
}

/** The EUI-64 link-local address of a MAC (fe80::XXXX:XXff:feXX:XXXX, universal/local bit flipped). */
export function eui64LinkLocal(m: string): string {
  const b = mac(m);
  const g = [((b[0] ?? 0) ^ 2) << 8 | (b[1] ?? 0), (b[2] ?? 0) << 8 | 0xff, 0xfe00 | (b[3] ?? 0), (b[4] ?? 0) << 8 | (b[5] ?? 0)];
  return netIp.formatAddress(ip(`fe80::${g.map((x) => x.toString(16)).join(':')}`));
}
