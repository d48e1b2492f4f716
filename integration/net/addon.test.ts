// The native addon's sockets against the real kernel, in fresh namespaces: datagrams larger than
// any fixed buffer arrive whole, an unclosed idle socket is closed by the garbage collector while
// a socket with a request pending is not, errors carry the addon's own errno names, and link
// names are read by index in another namespace.
// Large datagrams are sent by a second netlink socket to the first one's port id (root may
// unicast between netlink sockets), since the kernel's own answers stay under 64 KiB here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { NetlinkSocket, Rtnl } from '@vmhost/net';
import { openNetns } from '../../packages/net/src/netns.js';
import { native, type NativeSocket } from '../../packages/net/src/sys/native.js';
import { nativeDriver } from '../../packages/net/src/transport/driver.js';
import { freshNetns, sh } from '../helpers/ns.js';

const RTM_NEWLINK = 16;
const RTNLGRP_LINK = 1;
/** Larger than the 1 MiB buffer the addon used to read into; within the sender's 2 MiB send buffer. */
const BIG = 1536 * 1024 + 4;

/** One netlink message of `len` bytes (header included) with a recognisable payload. */
function message(len: number, seq: number): Buffer {
  const b = Buffer.alloc(len);
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(RTM_NEWLINK, 4);
  b.writeUInt32LE(seq, 8);
  for (let i = 16; i < len; i++) b[i] = (i * 7) & 0xff;
  return b;
}

/** A raw addon socket in namespace `ns`, used only to send to other sockets' port ids. */
function sender(ns: string): { send: (b: Buffer, port: number) => void; close: () => void } {
  const fd = openNetns(ns);
  let h: NativeSocket;
  try {
    h = native().socketOpen(0, fd, 1 << 16, () => undefined);
  } finally {
    closeSync(fd);
  }
  return { send: (b, port) => void native().socketSend(h, b, port), close: () => native().socketClose(h) };
}

/** Runs a module script in a child node with `--expose-gc`; returns what it printed. */
async function child(code: string): Promise<string> {
  const p = spawn(process.execPath, ['--expose-gc', '--conditions=vmhost-source', '--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const [exitCode, signal] = await new Promise<[number | null, string | null]>((r) => p.on('exit', (c, s) => r([c, s])));
  assert.equal(signal, null, out);
  assert.equal(exitCode, 0, out);
  return out;
}

test('a datagram over 1 MiB reaches the driver whole, between two small ones, in order', async (t) => {
  const ns = await freshNetns(t, 'addon-big');
  const got: Buffer[] = [];
  let wake: () => void = () => undefined;
  const a = nativeDriver({ protocol: 0, rcvbuf: 8 << 20, netns: ns }, (errno, dgs) => {
    assert.equal(errno, 0);
    got.push(...dgs);
    wake();
  });
  t.after(() => a.close());
  const s = sender(ns);
  t.after(() => s.close());
  const small = message(64, 1);
  const big = message(BIG, 2);
  a.ref(true);
  s.send(small, a.portId);
  s.send(big, a.portId);
  s.send(small, a.portId);
  while (got.length < 3) await new Promise<void>((r) => (wake = r));
  a.ref(false);
  assert.deepEqual(got.map((d) => d.length), [64, BIG, 64]);
  assert.ok(got[1]!.equals(big), 'the big datagram arrived byte for byte');
});

test('datagrams queued beyond one batch (512 datagrams, 256 KiB) arrive whole, in order, in several batches', async (t) => {
  const ns = await freshNetns(t, 'addon-batch');
  const got: Buffer[] = [];
  let calls = 0;
  let wake: () => void = () => undefined;
  const a = nativeDriver({ protocol: 0, rcvbuf: 8 << 20, netns: ns }, (errno, dgs) => {
    assert.equal(errno, 0);
    calls++;
    got.push(...dgs);
    wake();
  });
  t.after(() => a.close());
  const s = sender(ns);
  t.after(() => s.close());
  // All sent before the event loop reads any: 700 datagrams of 100 to 1,300 bytes (~490 KiB), and
  // one of 80 KiB in the middle (more than the room kept free for the next datagram).
  const sent = Array.from({ length: 700 }, (_, i) => message(i === 350 ? 80 * 1024 : 100 + (i % 13) * 100, i + 1));
  for (const d of sent) s.send(d, a.portId);
  a.ref(true);
  while (got.length < sent.length) await new Promise<void>((r) => (wake = r));
  a.ref(false);
  assert.equal(got.length, sent.length);
  for (const [i, d] of sent.entries()) assert.ok(got[i]!.equals(d), `datagram ${i + 1} arrived whole and in order`);
  assert.ok(calls >= 2, `handed over in ${calls} batches`);
});

test('a monitor yields a message over 1 MiB whole (before: cut at 1 MiB, dropped as malformed, next() hung)', async (t) => {
  const ns = await freshNetns(t, 'addon-mon');
  const mon = NetlinkSocket.monitor([RTNLGRP_LINK], { netns: ns, rcvbuf: 8 << 20, signal: AbortSignal.timeout(20_000) });
  t.after(() => mon.close());
  const s = sender(ns);
  t.after(() => s.close());
  const big = message(BIG, 7);
  s.send(big, mon.portId);
  const r = await mon.next();
  assert.equal(r.done, false);
  const m = r.value as { type: number; seq: number; payload: Buffer };
  assert.deepEqual([m.type, m.seq, m.payload.length], [RTM_NEWLINK, 7, BIG - 16]);
  assert.ok(m.payload.equals(big.subarray(16)));
  assert.equal(mon.malformed, 0);
});

test('the garbage collector closes sockets nobody closed; a socket with a request pending stays open', async (t) => {
  const ns = await freshNetns(t, 'addon-gc');
  const socketUrl = new URL('../../packages/net/src/transport/socket.ts', import.meta.url).href;
  const out = await child(`
    import { readdirSync } from 'node:fs';
    const { NetlinkSocket } = await import(${JSON.stringify(socketUrl)});
    const ns = ${JSON.stringify(ns)};
    const fds = () => readdirSync('/proc/self/fd').length;
    const settle = async () => { for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setImmediate(r)); } };
    // One socket made and used first, so that the addon and the modules are loaded.
    const keep = NetlinkSocket.open({ netns: ns });
    await keep.request(18, 0x300, Buffer.alloc(16));
    await settle();
    const before = fds();
    for (let i = 0; i < 200; i++) {
      const s = NetlinkSocket.open({ netns: ns });
      if (i % 2) await s.request(18, 0x300, Buffer.alloc(16)); // used, then idle
    }
    const opened = fds();
    await settle();
    const after = fds();
    // A request in flight on a socket nobody references any more: it must still be answered.
    const pending = NetlinkSocket.open({ netns: ns }).request(18, 0x300, Buffer.alloc(16));
    await settle();
    const msgs = await pending;
    console.log(JSON.stringify({ before, opened, after, answered: msgs.length }));
    keep.close();
  `);
  const r = JSON.parse(out.trim().split('\n').at(-1)!) as { before: number; opened: number; after: number; answered: number };
  assert.ok(r.opened >= r.before + 200, `200 sockets were open: ${out}`);
  assert.ok(r.after <= r.before + 2, `the collector closed them: ${out}`);
  assert.equal(r.answered, 1, 'the pending request on an unreferenced socket was answered (lo)');
});

test('the addon names errno values itself (no strerrorname_np), as Node does', () => {
  const n = native();
  const { errno } = osConstants;
  for (const [name, num] of Object.entries(errno)) {
    if (name === 'EWOULDBLOCK' || name === 'EDEADLOCK' || name === 'ENOTSUP') continue; // aliases
    assert.equal(n.errnoName(num), name, `errno ${num}`);
  }
  assert.equal(n.errnoName(0), null);
  assert.equal(n.errnoName(100000), null);
  // An error thrown by the addon carries the name as its code; bad arguments are TypeErrors.
  assert.throws(() => n.setns(-1, 0), (e: unknown) => (e as { code?: string }).code === 'EBADF' && (e as { errno?: number }).errno === errno.EBADF);
  assert.throws(() => n.socketOpen(0, -1, 4096, 'not a function' as never), TypeError);
  assert.throws(() => n.mount(null, 42 as never, null, 0, null), TypeError);
});

test('ifNames: the names of link indices in another namespace, null where there is no link', async (t) => {
  const ns = await freshNetns(t, 'ifnames');
  const h = await Rtnl.open({ netns: ns });
  t.after(() => h.close());
  await h.links.add({ kind: 'veth', name: 'first', peer: { name: 'second' } });
  const links = await h.links.list();
  const byName = new Map(links.map((l) => [l.name, l.index]));
  const fd = openNetns(ns);
  let pending: Promise<Array<string | null>>;
  try {
    const idx = Uint32Array.from([byName.get('second')!, 1, 999_999, 0, 0xffffffff, byName.get('first')!]);
    pending = native().ifNames(fd, idx);
    idx.fill(0); // the addon took a copy
    assert.deepEqual(await native().ifNames(fd, new Uint32Array(0)), []);
    // the caller's namespace is another one: there, this index is not 'second' (or no link at all)
    assert.notEqual((await native().ifNames(-1, Uint32Array.from([byName.get('second')!])))[0], 'second');
  } finally {
    closeSync(fd); // the lookups use a socket made in the namespace: the fd may go
  }
  assert.deepEqual(await pending, ['second', 'lo', null, null, null, 'first']);
  assert.throws(() => native().ifNames(999_999, Uint32Array.from([1])), (e: unknown) => (e as { code?: string }).code === 'EBADF');
  assert.throws(() => native().ifNames(-1, [1] as unknown as Uint32Array), TypeError);
});

test('linkWatch: renames, new and deleted links in order; lost notifications marked', async (t) => {
  const ns = await freshNetns(t, 'linkwatch');
  const fd = openNetns(ns);
  const watch = native().linkWatchOpen(fd);
  t.after(() => {
    closeSync(watch);
    closeSync(fd);
  });
  assert.deepEqual(native().linkWatchRead(watch), []);
  await sh(ns, 'ip', ['-batch', '-'], 'link add a0 type veth peer name b0\nlink set a0 name c0\nlink del c0\n');
  const got = native().linkWatchRead(watch);
  const pairs: Array<[number, string | null]> = [];
  for (let i = 0; i < got.length; i += 2) pairs.push([got[i] as number, got[i + 1] as string | null]);
  const names = pairs.map(([, n]) => n);
  assert.ok(names.indexOf('a0') >= 0 && names.indexOf('a0') < names.indexOf('c0'), JSON.stringify(pairs));
  const c0 = pairs.find(([, n]) => n === 'c0')![0];
  assert.ok(pairs.findIndex(([i, n]) => i === c0 && n === null) > names.lastIndexOf('c0'), 'the deletion comes last');
  assert.deepEqual(native().linkWatchRead(watch), []);
  // far more notifications than the socket's queue holds: the loss is marked, the rest still read
  await sh(ns, 'ip', ['-batch', '-'], Array.from({ length: 600 }, (_, i) => `link add x${i} type veth peer name y${i}\n`).join(''));
  const many = native().linkWatchRead(watch);
  assert.ok(many.some((v, i) => i % 2 === 0 && v === -1), 'an overrun is reported');
  assert.throws(() => native().linkWatchRead(999_999), (e: unknown) => (e as { code?: string }).code === 'EBADF');
});
