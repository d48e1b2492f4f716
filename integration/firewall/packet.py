#!/usr/bin/python3
"""Raw Ethernet frames for the firewall's isolation tests (AF_PACKET), run inside a namespace.

  packet.py send IFACE HEX [HEX ...]
      Sends each frame (hex bytes, Ethernet header included) out of IFACE, in order, from one CPU
      (so that they reach the bridge in the order sent: one backlog queue, no reordering).
  packet.py capture IFACE SENTINEL_HEX TIMEOUT_S
      Prints "ready" once the socket is bound, then records every frame that arrives on IFACE
      (outgoing ones ignored) until a frame equal to SENTINEL_HEX arrived, or TIMEOUT_S passed;
      then prints one JSON object: {"frames": [hex, ...], "sentinel": true|false}. A VLAN tag the
      kernel took out of a frame is put back, so that frames compare byte for byte.

The frames themselves are built by integration/firewall/frames.ts; this is only the pipe.
"""
import json
import os
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40


def with_vlan_tag(data, ancdata):
    """The frame as it was on the wire: the kernel takes a VLAN tag out of the data (into auxdata)."""
    for level, kind, aux in ancdata:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(aux) >= 20:
            status = struct.unpack_from("I", aux, 0)[0]
            tci, tpid = struct.unpack_from("HH", aux, 16)
            if status & TP_STATUS_VLAN_VALID:
                tpid = tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100
                return data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
    return data


def send(iface, frames):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.bind((iface, 0))
    for f in frames:
        s.send(bytes.fromhex(f))
    s.close()


def capture(iface, sentinel, timeout):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.bind((iface, 0))
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    want = bytes.fromhex(sentinel)
    frames = []
    seen = False
    end = time.monotonic() + timeout
    while not seen:
        left = end - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        data, ancdata, _, addr = s.recvmsg(65536, socket.CMSG_SPACE(64))
        if addr[2] == PACKET_OUTGOING:
            continue
        data = with_vlan_tag(data, ancdata)
        frames.append(data.hex())
        seen = data == want
    sys.stdout.write(json.dumps({"frames": frames, "sentinel": seen}) + "\n")
    sys.stdout.flush()


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "send":
        send(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) == 5 and sys.argv[1] == "capture":
        capture(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


main()
