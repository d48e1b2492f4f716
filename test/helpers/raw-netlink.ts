// Netlink messages built by hand, without @vmhost/net's codec: for the transport test and the
// transport benchmark, which must exercise the transport alone.

/** A netlink attribute: length, type, data, padded to 4 bytes. */
export function attr(type: number, data: Buffer): Buffer {
  const b = Buffer.alloc((4 + data.length + 3) & ~3);
  b.writeUInt16LE(4 + data.length, 0);
  b.writeUInt16LE(type, 2);
  data.copy(b, 4);
  return b;
}

/** A NUL-terminated string attribute value. */
export const str = (s: string): Buffer => Buffer.from(s + '\0');

/** A struct ifinfomsg (16 bytes) with `ifi_index`. */
export function ifinfomsg(index = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32LE(index, 4);
  return b;
}

export const IFLA_IFNAME = 3;
export const IFLA_LINKINFO = 18;
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
export const VETH_INFO_PEER = 1;

/** RTM_NEWLINK payload of a veth pair: ifinfomsg + IFLA_IFNAME + IFLA_LINKINFO{KIND veth, DATA{PEER{ifinfomsg + IFLA_IFNAME}}}. */
export function vethPayload(name: string, peer: string): Buffer {
  const peerMsg = Buffer.concat([ifinfomsg(), attr(IFLA_IFNAME, str(peer))]);
  const info = Buffer.concat([attr(IFLA_INFO_KIND, str('veth')), attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peerMsg))]);
  return Buffer.concat([ifinfomsg(), attr(IFLA_IFNAME, str(name)), attr(IFLA_LINKINFO, info)]);
}
