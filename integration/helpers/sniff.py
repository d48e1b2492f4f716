#!/usr/bin/python3
"""Counts the frames of interest on interfaces (AF_PACKET, both directions), run inside a namespace.

  sniff.py IFACE [IFACE ...]
      Prints "ready" once every socket is bound, then counts frames until stdin is closed and prints
      one JSON object: {"IFACE DIR KIND DETAIL": count, ...}. DIR is "in" (the interface received
      the frame: on a TAP, the guest sent it) or "out" (the host sent it: on a TAP, towards the
      guest). KIND and DETAIL:
        arp SENDER_IP/SENDER_MAC        an ARP request or reply
        na TARGET/TARGET_LLADDR         an ICMPv6 neighbour advertisement (lladdr "-" without the option)
        ra SOURCE_MAC                   an ICMPv6 router advertisement
        dhcp-server SOURCE_IP           a UDP datagram from port 67 (a DHCP server's reply)
        dhcp6-server SOURCE_MAC         a UDP datagram from port 547
        udp DEST_IP:DEST_PORT           another UDP datagram (its destination)
      Other frames are not counted. 802.1Q tags are not looked through.
"""
import ipaddress
import json
import select
import socket
import struct
import sys

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def mac(b):
    return ":".join("%02x" % x for x in b)


def classify(f):
    if len(f) < 14:
        return None
    src_mac = mac(f[6:12])
    etype = struct.unpack("!H", f[12:14])[0]
    p = f[14:]
    if etype == 0x0806 and len(p) >= 28:
        return "arp %s/%s" % (socket.inet_ntoa(p[14:18]), mac(p[8:14]))
    if etype == 0x0800 and len(p) >= 20:
        ihl = (p[0] & 15) * 4
        if p[9] == 17 and len(p) >= ihl + 8:
            sport, dport = struct.unpack("!HH", p[ihl:ihl + 4])
            if sport == 67:
                return "dhcp-server %s" % socket.inet_ntoa(p[12:16])
            return "udp %s:%d" % (socket.inet_ntoa(p[16:20]), dport)
        return None
    if etype == 0x86DD and len(p) >= 40:
        nxt, body = p[6], p[40:]
        if nxt == 58 and len(body) >= 4:
            t = body[0]
            if t == 134:
                return "ra %s" % src_mac
            if t == 136 and len(body) >= 24:
                target = str(ipaddress.IPv6Address(bytes(body[8:24])))
                ll = "-"
                if len(body) >= 32 and body[24] == 2 and body[25] == 1:
                    ll = mac(body[26:32])
                return "na %s/%s" % (target, ll)
        if nxt == 17 and len(body) >= 8:
            sport, dport = struct.unpack("!HH", body[0:4])
            if sport == 547:
                return "dhcp6-server %s" % src_mac
        return None
    return None


def main():
    socks = {}
    for iface in sys.argv[1:]:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((iface, 0))
        socks[s] = iface
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    counts = {}
    stdin = sys.stdin.fileno()
    while True:
        r, _, _ = select.select(list(socks) + [stdin], [], [])
        for s in r:
            if s == stdin:
                for rest in socks:
                    # what arrived before stdin closed is still counted
                    rest.setblocking(False)
                    while True:
                        try:
                            data, addr = rest.recvfrom(65536)
                        except BlockingIOError:
                            break
                        count(counts, socks[rest], data, addr)
                sys.stdout.write(json.dumps(counts, sort_keys=True) + "\n")
                sys.stdout.flush()
                return
            data, addr = s.recvfrom(65536)
            count(counts, socks[s], data, addr)


def count(counts, iface, data, addr):
    kind = classify(data)
    if kind is None:
        return
    key = "%s %s %s" % (iface, "out" if addr[2] == PACKET_OUTGOING else "in", kind)
    counts[key] = counts.get(key, 0) + 1


if __name__ == "__main__":
    main()
