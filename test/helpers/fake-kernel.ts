// A fake rtnetlink kernel for unit tests of request encoding: it records every request sent and
// acknowledges each one (NLMSG_ERROR 0), so an operation resolves without a real socket.
import { netlink, NetlinkSocket, type NlMsg } from '@vmhost/net';
import { RtnlContext } from '../../packages/net/src/context.js';
import type { NetlinkDriverFactory } from '../../packages/net/src/transport/driver.js';
import type { DriverSocketOptions } from '../../packages/net/src/transport/socket.js';

/** A socket on the fake kernel, an RtnlContext on it, and the requests it received. */
export function fakeKernel(): { sock: NetlinkSocket; ctx: RtnlContext; sent: NlMsg[] } {
  const sent: NlMsg[] = [];
  const driver: NetlinkDriverFactory = (_o, onData) => ({
    portId: 4242,
    send: (d: Buffer) => {
      for (const m of netlink.decodeNlMsgs(Buffer.from(d))) { // a copy: the socket reuses its send buffer
        sent.push(m);
        const ack = Buffer.alloc(20); // error 0, then the request's header
        ack.writeUInt32LE(16 + m.payload.length, 4);
        ack.writeUInt16LE(m.type, 8);
        ack.writeUInt32LE(m.seq, 12);
        setImmediate(() => onData(0, [netlink.encodeNlMsg({ type: netlink.NLMSG_ERROR, flags: netlink.NLM_F_CAPPED, seq: m.seq, payload: ack })]));
      }
    },
    addMembership: () => undefined,
    ref: () => undefined,
    close: () => undefined,
  });
  const options: DriverSocketOptions = { driver };
  const sock = NetlinkSocket.open(options);
  return { sock, ctx: new RtnlContext(sock, '/proc/self/ns/net'), sent };
}
