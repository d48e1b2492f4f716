// What @vmhost/net's JavaScript costs per request, without a kernel: `links.add` of a veth pair
// (`result: false`, and returning the link) and a bare NetlinkSocket request, 256 in flight,
// against a driver that answers every request in the next turn of the event loop (the kernel
// answers a datagram of requests the same way, all at once): an ack, after an echo of the new link
// when NLM_F_ECHO asks for one (a veth's RTM_NEWLINK captured from the kernel, test/net/fixtures,
// with the requested name). The kernel's own work for a veth pair is
// ~250-320 µs (bench:compare's floor), so this is the part of a creation that is ours.
//
//   npm run bench -- bench/net-request-cost.ts [--rounds 12] [--n 1000]
//
// Prints µs per request for the first round (a fresh process: code not yet optimised) and the
// median of the last half of the rounds; asserts nothing.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { NetlinkSocket } from '@vmhost/net';
import { RtnlContext } from '../packages/net/src/context.js';
import { newLinks } from '../packages/net/src/links/links.js';
import type { NetlinkDriverFactory } from '../packages/net/src/transport/driver.js';
import type { DriverSocketOptions } from '../packages/net/src/transport/socket.js';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const ROUNDS = arg('rounds', 12);
const N = arg('n', 1000);
const WINDOW = 256;

const IFLA_IFNAME = 3;
const NLM_F_ECHO = 8;

/** A veth's RTM_NEWLINK payload as the kernel sent it, split around its IFLA_IFNAME attribute. */
function echoTemplate(): { before: Buffer; after: Buffer } {
  const fixture = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'test', 'net', 'fixtures', 'kernel-messages.json'), 'utf8')) as { links: Array<{ payload: string }> };
  const veth = fixture.links.map((l) => Buffer.from(l.payload, 'hex')).find((p) => p.includes('veth\0'));
  if (!veth) throw new Error('no veth in test/net/fixtures/kernel-messages.json');
  for (let off = 16; off < veth.length; off += (veth.readUInt16LE(off) + 3) & ~3) {
    if (veth.readUInt16LE(off + 2) === IFLA_IFNAME) return { before: veth.subarray(0, off), after: veth.subarray(off + ((veth.readUInt16LE(off) + 3) & ~3)) };
  }
  throw new Error('the captured veth has no IFLA_IFNAME');
}
const template = echoTemplate();

/** Where the request at `off` of datagram `d` has its IFLA_IFNAME attribute, and that attribute's padded length. */
function nameAttr(d: Buffer, off: number, len: number): { at: number; size: number } {
  for (let a = off + 32; a < off + len; a += (d.readUInt16LE(a) + 3) & ~3) {
    if (d.readUInt16LE(a + 2) === IFLA_IFNAME) return { at: a, size: (d.readUInt16LE(a) + 3) & ~3 };
  }
  throw new Error('a request without IFLA_IFNAME');
}

/**
 * A driver that answers every request of a datagram: its echo when asked, then an ack
 * (NLMSG_ERROR 0, NETLINK_CAP_ACK's short form). Like the addon, it hands over one buffer per
 * batch with a view per datagram, so that what is measured is the transport and the codec, not
 * the fake's own allocations.
 */
const acking: NetlinkDriverFactory = (_o, onData) => ({
  portId: 4242,
  send(d: Buffer) {
    // first pass: each request's name attribute (when it asks for an echo) and the answers' size
    const names: Array<{ at: number; size: number } | undefined> = [];
    let size = 0;
    for (let off = 0; off < d.length; off += (d.readUInt32LE(off) + 3) & ~3) {
      const name = d.readUInt16LE(off + 6) & NLM_F_ECHO ? nameAttr(d, off, d.readUInt32LE(off)) : undefined;
      names.push(name);
      size += (name ? 16 + template.before.length + name.size + template.after.length : 0) + 36;
    }
    const out = Buffer.allocUnsafe(size);
    const views: Buffer[] = [];
    let w = 0;
    for (let off = 0, i = 0; off < d.length; i++) {
      const len = d.readUInt32LE(off);
      const seq = d.readUInt32LE(off + 8);
      const name = names[i];
      if (name) {
        const start = w;
        out.fill(0, w, w + 16);
        out.writeUInt16LE(d.readUInt16LE(off + 4), w + 4);
        out.writeUInt32LE(seq, w + 8);
        w += 16;
        w += template.before.copy(out, w);
        w += d.copy(out, w, name.at, name.at + name.size);
        w += template.after.copy(out, w);
        out.writeUInt32LE(w - start, start);
        views.push(out.subarray(start, w));
      }
      out.writeUInt32LE(36, w);
      out.writeUInt16LE(2, w + 4); // NLMSG_ERROR
      out.writeUInt16LE(0x100, w + 6); // NLM_F_CAPPED
      out.writeUInt32LE(seq, w + 8);
      out.writeUInt32LE(0, w + 12);
      out.writeInt32LE(0, w + 16);
      d.copy(out, w + 20, off, off + 16);
      views.push(out.subarray(w, w + 36));
      w += 36;
      off += (len + 3) & ~3;
    }
    setImmediate(() => onData(0, views));
  },
  addMembership: () => undefined,
  ref: () => undefined,
  close: () => undefined,
});

async function pool(n: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(WINDOW, n) }, worker));
}

async function measure(label: string, fn: (i: number) => Promise<unknown>): Promise<void> {
  const us: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    await pool(N, fn);
    us.push(((performance.now() - t0) * 1000) / N);
  }
  const late = us.slice(Math.floor(ROUNDS / 2)).sort((a, b) => a - b);
  const med = late[Math.floor(late.length / 2)] as number;
  console.log(`${label.padEnd(34)} first ${N}: ${us[0]!.toFixed(1).padStart(5)} µs/request   later rounds (median): ${med.toFixed(1).padStart(5)} µs/request`);
}

const options: DriverSocketOptions = { driver: acking };
const sock = NetlinkSocket.open(options);
const links = newLinks(new RtnlContext(sock, '/proc/self/ns/net'));
const payload = Buffer.alloc(16);
try {
  await measure('links.add veth (result: false)', (i) => links.add({ kind: 'veth', name: `v${i}`, peer: { name: `p${i}` } }, { result: false }));
  await measure('links.add veth (returning the link)', async (i) => {
    const link = await links.add({ kind: 'veth', name: `w${i}`, peer: { name: `q${i}` } });
    if (link.name !== `w${i}`) throw new Error(`the echo of w${i} came back as ${link.name}`);
  });
  await measure('NetlinkSocket.request (16 bytes)', () => sock.request(19, 0, payload));
} finally {
  sock.close();
}
