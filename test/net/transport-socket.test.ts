// The request dispatcher of NetlinkSocket and the monitor iterator, driven by a fake driver:
// what the socket sends is decoded, the "kernel" answers are built by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import {
  netlink,
  NetlinkSocket,
  NetlinkError,
  NetlinkClosedError,
  NetlinkTimeoutError,
  NetlinkDumpInterruptedError,
  NetlinkDecodeError,
  ValidationError,
  type NlMsg,
} from '@vmhost/net';
import type { NetlinkDriverFactory } from '../../packages/net/src/transport/driver.js';
import type { DriverSocketOptions } from '../../packages/net/src/transport/socket.js';
import type { DriverMonitorOptions } from '../../packages/net/src/transport/monitor.js';

const {
  encodeNlMsg,
  decodeNlMsgs,
  NLM_F_REQUEST,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_MULTI,
  NLM_F_DUMP_INTR,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_CAPPED,
  NLM_F_ACK_TLVS,
  NLMSG_ERROR,
  NLMSG_DONE,
  NLMSG_NOOP,
  MAX_DATAGRAM,
} = netlink;

const RTM_NEWLINK = 16;
const RTM_GETLINK = 18;
const RTM_GETADDR = 22;
const ENOBUFS = constants.errno.ENOBUFS;

/** A fake driver: records datagrams, lets the test deliver answers. */
class FakeKernel {
  sent: Buffer[] = [];
  refs: boolean[] = [];
  groups: number[] = [];
  closed = 0;
  deliver: (errno: number, dgs: Buffer[]) => void = () => undefined;
  failNextSend: Error | undefined;
  readonly factory: NetlinkDriverFactory = (_opts, onData) => {
    this.deliver = onData;
    return {
      portId: 4242,
      send: (b: Buffer) => {
        if (this.failNextSend) {
          const e = this.failNextSend;
          this.failNextSend = undefined;
          throw e;
        }
        this.sent.push(Buffer.from(b));
      },
      addMembership: (g: number) => void this.groups.push(g),
      ref: (on: boolean) => void this.refs.push(on),
      close: () => void this.closed++,
    };
  };
  /** Every message sent so far, in order. */
  get requests(): NlMsg[] {
    return this.sent.flatMap((d) => decodeNlMsgs(d));
  }
  get lastRef(): boolean | undefined {
    return this.refs.at(-1);
  }
  reply(...msgs: Buffer[]): void {
    this.deliver(0, [Buffer.concat(msgs)]);
  }
}

/** Runs after the socket's setImmediate flush. */
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function ack(seq: number, error = 0, extack?: { message?: string; offset?: number }): Buffer {
  const tlvs: Buffer[] = [];
  if (extack?.message !== undefined) {
    const s = Buffer.from(extack.message + '\0');
    const a = Buffer.alloc((4 + s.length + 3) & ~3);
    a.writeUInt16LE(4 + s.length, 0);
    a.writeUInt16LE(1, 2);
    s.copy(a, 4);
    tlvs.push(a);
  }
  if (extack?.offset !== undefined) {
    const a = Buffer.alloc(8);
    a.writeUInt16LE(8, 0);
    a.writeUInt16LE(2, 2);
    a.writeUInt32LE(extack.offset, 4);
    tlvs.push(a);
  }
  const body = Buffer.alloc(20);
  body.writeInt32LE(-error, 0);
  body.writeUInt32LE(16, 4);
  body.writeUInt32LE(seq, 12);
  const flags = NLM_F_CAPPED | (tlvs.length ? NLM_F_ACK_TLVS : 0);
  return encodeNlMsg({ type: NLMSG_ERROR, flags, seq, payload: Buffer.concat([body, ...tlvs]) });
}
const part = (seq: number, tag: number, flags = NLM_F_MULTI): Buffer =>
  encodeNlMsg({ type: RTM_NEWLINK, flags, seq, payload: Buffer.from([tag, 0, 0, 0]) });
const done = (seq: number, flags = NLM_F_MULTI): Buffer => encodeNlMsg({ type: NLMSG_DONE, flags, seq, payload: Buffer.alloc(4) });
const tags = (msgs: NlMsg[]): number[] => msgs.map((m) => m.payload[0]!);

function open(k: FakeKernel, options: DriverSocketOptions = {}): NetlinkSocket {
  const o: DriverSocketOptions = { ...options, driver: k.factory };
  return NetlinkSocket.open(o);
}

test('requests made in one tick are corked into one datagram with distinct seqs, REQUEST|ACK added', async () => {
  const k = new FakeKernel();
  const s = open(k);
  const ps = Array.from({ length: 10 }, (_, i) => s.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, Buffer.from([i])));
  assert.equal(k.sent.length, 0, 'nothing is sent synchronously');
  await tick();
  assert.equal(k.sent.length, 1);
  const reqs = k.requests;
  assert.equal(reqs.length, 10);
  assert.equal(new Set(reqs.map((r) => r.seq)).size, 10);
  for (const [i, r] of reqs.entries()) {
    assert.equal(r.type, RTM_NEWLINK);
    assert.equal(r.flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
    assert.equal(r.payload[0], i, 'sent in the order requested');
  }
  k.reply(...reqs.map((r) => ack(r.seq)));
  assert.deepEqual(await Promise.all(ps), Array.from({ length: 10 }, () => []));
  assert.equal(s.stats.datagramsSent, 1);
  assert.equal(s.stats.requestsSent, 10);
  s.close();
});

test('answers are routed by seq in any order; a GET reply comes back with its message', async () => {
  const k = new FakeKernel();
  const s = open(k);
  const a = s.request(RTM_GETLINK, 0, Buffer.alloc(16));
  const b = s.request(RTM_NEWLINK, 0, Buffer.alloc(16));
  const c = s.request(RTM_GETLINK, 0, Buffer.alloc(16));
  await tick();
  const [ra, rb, rc] = k.requests;
  // Reverse order, spread over several datagrams.
  k.reply(part(rc!.seq, 3, 0), ack(rc!.seq));
  k.reply(ack(rb!.seq, 17, { message: 'exists' }));
  k.reply(part(ra!.seq, 1, 0));
  k.reply(ack(ra!.seq));
  assert.deepEqual(tags(await a), [1]);
  assert.deepEqual(tags(await c), [3]);
  await assert.rejects(b, (e) => e instanceof NetlinkError && e.code === 'EEXIST' && e.extack === 'exists');
  s.close();
});

test('a NetlinkError carries errno, code, op, extack message and offset', async () => {
  const k = new FakeKernel();
  const s = open(k);
  const p = s.request(RTM_NEWLINK, NLM_F_CREATE, Buffer.alloc(16), { op: 'links.add veth0' });
  await tick();
  k.reply(ack(k.requests[0]!.seq, 95, { message: 'Unknown device type', offset: 32 }));
  const err = await p.then(
    () => assert.fail('should reject'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof NetlinkError);
  assert.equal(err.errno, 95);
  assert.equal(err.code, 'EOPNOTSUPP');
  assert.equal(err.op, 'links.add veth0');
  assert.equal(err.extack, 'Unknown device type');
  assert.equal(err.extackOffset, 32);
  assert.equal(err.message, 'links.add veth0: EOPNOTSUPP (Operation not supported): Unknown device type');
  // Default op: the message type's name.
  const q = s.request(RTM_NEWLINK, 0, Buffer.alloc(16));
  await tick();
  k.reply(ack(k.requests[1]!.seq, 17));
  await assert.rejects(q, { message: 'RTM_NEWLINK: EEXIST (File exists)' });
  s.close();
});

test('every form of a positive ack resolves; a damaged one rejects with the decode error', async () => {
  const k = new FakeKernel();
  const s = open(k);
  const ps = Array.from({ length: 5 }, (_, i) => s.request(RTM_NEWLINK, NLM_F_CREATE, Buffer.from([i, 0, 0, 0])));
  await tick();
  const seqs = k.requests.map((r) => r.seq);
  const body = (seq: number, extra: Buffer[] = []): Buffer => {
    const b = Buffer.alloc(20);
    b.writeUInt32LE(16, 4);
    b.writeUInt32LE(seq, 12);
    return Buffer.concat([b, ...extra]);
  };
  const warning = Buffer.alloc(12);
  warning.writeUInt16LE(12, 0);
  warning.writeUInt16LE(1, 2); // NLMSGERR_ATTR_MSG
  warning.write('careful', 4);
  k.reply(
    encodeNlMsg({ type: NLMSG_ERROR, flags: NLM_F_CAPPED, seq: seqs[0]!, payload: body(seqs[0]!) }),
    // without NETLINK_CAP_ACK: the request's header and body follow the error field
    encodeNlMsg({ type: NLMSG_ERROR, flags: 0, seq: seqs[1]!, payload: body(seqs[1]!, [Buffer.from([1, 0, 0, 0])]) }),
    // the error field alone (older senders)
    encodeNlMsg({ type: NLMSG_ERROR, flags: 0, seq: seqs[2]!, payload: Buffer.alloc(4) }),
    // a success with a warning (extended ack TLVs)
    encodeNlMsg({ type: NLMSG_ERROR, flags: NLM_F_CAPPED | NLM_F_ACK_TLVS, seq: seqs[3]!, payload: body(seqs[3]!, [warning]) }),
    // damaged: cut inside the request's header
    encodeNlMsg({ type: NLMSG_ERROR, flags: NLM_F_CAPPED, seq: seqs[4]!, payload: Buffer.alloc(8) }),
  );
  assert.deepEqual(await Promise.all(ps.slice(0, 4)), [[], [], [], []]);
  await assert.rejects(ps[4]!, (e: unknown) => e instanceof NetlinkDecodeError && /truncated inside the request header/.test(e.message));
  s.close();
});

test('a multipart dump is collected whole across datagrams; no ACK flag on dumps', async () => {
  const k = new FakeKernel();
  const s = open(k);
  const p = s.request(RTM_GETLINK, NLM_F_DUMP | NLM_F_ACK, Buffer.alloc(16));
  await tick();
  const [r] = k.requests;
  assert.equal(r!.flags, NLM_F_REQUEST | NLM_F_DUMP, 'NLM_F_ACK removed from a dump');
  k.reply(part(r!.seq, 1), part(r!.seq, 2));
  k.reply(part(r!.seq, 3));
  k.reply(part(r!.seq, 4), done(r!.seq));
  assert.deepEqual(tags(await p), [1, 2, 3, 4]);
  s.close();
});

test('NEW requests with NLM_F_EXCL (same bit as NLM_F_MATCH) are not mistaken for dumps', async () => {
  const k = new FakeKernel();
  const s = open(k);
  const p = s.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, Buffer.alloc(16));
  await tick();
  assert.equal(k.requests[0]!.flags & NLM_F_ACK, NLM_F_ACK);
  k.reply(ack(k.requests[0]!.seq));
  await p;
  s.close();
});

test('one dump at a time per socket: other dumps wait while plain requests keep flowing', async () => {
  const k = new FakeKernel();
  const s = open(k);
  const d1 = s.request(RTM_GETLINK, NLM_F_DUMP, Buffer.alloc(16));
  const d2 = s.request(RTM_GETADDR, NLM_F_DUMP, Buffer.alloc(8));
  const d3 = s.request(RTM_GETLINK, NLM_F_DUMP, Buffer.alloc(16));
  const plain = s.request(RTM_NEWLINK, 0, Buffer.alloc(16));
  await tick();
  assert.deepEqual(k.requests.map((r) => r.type), [RTM_GETLINK, RTM_NEWLINK], 'only the first dump goes out');
  const [r1, rp] = k.requests;
  k.reply(part(r1!.seq, 1), ack(rp!.seq));
  assert.deepEqual(await plain, [], 'a plain request completes while the dump runs');
  const more = s.request(RTM_NEWLINK, 0, Buffer.alloc(16));
  await tick();
  assert.deepEqual(k.requests.map((r) => r.type), [RTM_GETLINK, RTM_NEWLINK, RTM_NEWLINK]);
  k.reply(ack(k.requests[2]!.seq));
  await more;
  k.reply(done(r1!.seq));
  assert.deepEqual(tags(await d1), [1]);
  await tick();
  const r2 = k.requests[3]!;
  assert.equal(r2.type, RTM_GETADDR, 'the next dump starts after DONE');
  assert.equal(k.requests.length, 4);
  k.reply(part(r2.seq, 2), done(r2.seq));
  assert.deepEqual(tags(await d2), [2]);
  await tick();
  const r3 = k.requests[4]!;
  k.reply(done(r3.seq));
  assert.deepEqual(await d3, []);
  s.close();
});

test('NLM_F_DUMP_INTR: the dump is run again with a new seq and only the clean run is returned', async () => {
  const k = new FakeKernel();
  const s = open(k);
  const p = s.request(RTM_GETLINK, NLM_F_DUMP, Buffer.alloc(16));
  await tick();
  const first = k.requests[0]!;
  k.reply(part(first.seq, 1), part(first.seq, 2, NLM_F_MULTI | NLM_F_DUMP_INTR), done(first.seq, NLM_F_MULTI | NLM_F_DUMP_INTR));
  await tick();
  const second = k.requests[1]!;
  assert.equal(second.type, RTM_GETLINK);
  assert.notEqual(second.seq, first.seq);
  k.reply(part(first.seq, 99)); // a straggler of the first run: unknown seq now
  k.reply(part(second.seq, 7), part(second.seq, 8), done(second.seq));
  assert.deepEqual(tags(await p), [7, 8]);
  assert.equal(s.stats.dumpRetries, 1);
  assert.equal(s.stats.unknownSeq, 1);
  s.close();
});

test('a dump interrupted on every attempt fails with NetlinkDumpInterruptedError after dumpAttempts', async () => {
  const k = new FakeKernel();
  const s = open(k, { dumpAttempts: 3 });
  const p = s.request(RTM_GETLINK, NLM_F_DUMP, Buffer.alloc(16), { op: 'links.list' });
  for (let i = 0; i < 3; i++) {
    await tick();
    const r = k.requests[i]!;
    k.reply(part(r.seq, i, NLM_F_MULTI | NLM_F_DUMP_INTR), done(r.seq, NLM_F_MULTI | NLM_F_DUMP_INTR));
  }
  await assert.rejects(p, (e) => e instanceof NetlinkDumpInterruptedError && e.code === 'ENETLINK_DUMP_INTR' && e.attempts === 3 && e.op === 'links.list');
  await tick();
  assert.equal(k.requests.length, 3, 'no fourth attempt');
  s.close();
});

test('a dump that ends in an error (NLMSG_DONE with errno) rejects', async () => {
  const k = new FakeKernel();
  const s = open(k);
  const p = s.request(RTM_GETLINK, NLM_F_DUMP, Buffer.alloc(16));
  await tick();
  const seq = k.requests[0]!.seq;
  const body = Buffer.alloc(4);
  body.writeInt32LE(-22, 0);
  k.reply(part(seq, 1), encodeNlMsg({ type: NLMSG_DONE, flags: NLM_F_MULTI, seq, payload: body }));
  await assert.rejects(p, (e) => e instanceof NetlinkError && e.code === 'EINVAL');
  s.close();
});

test('answers with unknown seqs and undecodable datagrams are dropped and counted', async () => {
  const k = new FakeKernel();
  const s = open(k);
  const p = s.request(RTM_NEWLINK, 0, Buffer.alloc(16));
  await tick();
  const seq = k.requests[0]!.seq;
  k.reply(ack(seq + 1000), part(seq + 1, 5, 0));
  k.deliver(0, [Buffer.from([1, 2, 3])]);
  k.reply(ack(seq));
  assert.deepEqual(await p, []);
  assert.equal(s.stats.unknownSeq, 2);
  assert.equal(s.stats.malformed, 1);
  s.close();
});

test('close() rejects queued, in-flight and waiting dump requests with NetlinkClosedError; idempotent', async () => {
  const k = new FakeKernel();
  const s = open(k);
  const sent = s.request(RTM_NEWLINK, 0, Buffer.alloc(16), { op: 'a' });
  const dump = s.request(RTM_GETLINK, NLM_F_DUMP, Buffer.alloc(16), { op: 'b' });
  const waiting = s.request(RTM_GETLINK, NLM_F_DUMP, Buffer.alloc(16), { op: 'c' });
  await tick();
  const queued = s.request(RTM_NEWLINK, 0, Buffer.alloc(16), { op: 'd' });
  assert.equal(k.lastRef, true);
  s.close();
  s.close();
  for (const [p, op] of [[sent, 'a'], [dump, 'b'], [waiting, 'c'], [queued, 'd']] as const) {
    await assert.rejects(p, (e) => e instanceof NetlinkClosedError && e.op === op && e.code === 'ENETLINK_CLOSED');
  }
  assert.equal(k.closed, 1);
  assert.equal(k.lastRef, false);
  await assert.rejects(s.request(RTM_NEWLINK, 0, Buffer.alloc(16)), NetlinkClosedError);
  await tick();
  assert.equal(k.sent.length, 1, 'nothing is sent after close');
  // Answers after close are ignored without error.
  k.reply(ack(k.requests[0]!.seq));
});

test('timeout rejects the one request; its late answer is dropped and counted', async (t) => {
  // The request's timer is mocked: with a real 5 ms timer, a busy machine can run the timers phase
  // before the cork is flushed (setImmediate), and the request times out before it is ever sent.
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const k = new FakeKernel();
  const s = open(k);
  const slow = s.request(RTM_NEWLINK, 0, Buffer.alloc(16), { timeoutMs: 5, op: 'slow' });
  const slowRejected = assert.rejects(slow, (e) => e instanceof NetlinkTimeoutError && e.code === 'ENETLINK_TIMEOUT' && e.op === 'slow');
  const other = s.request(RTM_NEWLINK, 0, Buffer.alloc(16));
  await tick();
  const [r1, r2] = k.requests;
  assert.ok(r1 && r2, 'both requests were sent before the timeout');
  t.mock.timers.tick(5);
  await slowRejected;
  k.reply(ack(r1.seq), ack(r2.seq));
  assert.deepEqual(await other, []);
  assert.equal(s.stats.lateReplies, 1);
  assert.equal(s.stats.unknownSeq, 0);
  assert.equal(s.stats.inFlight, 0);
  s.close();
});

test('abort rejects with the signal reason; a queued request is never sent; a sent one is dropped late', async () => {
  const k = new FakeKernel();
  const s = open(k);
  const ac1 = new AbortController();
  const p1 = s.request(RTM_NEWLINK, 0, Buffer.from([1]), { signal: ac1.signal });
  ac1.abort(new Error('stop 1'));
  await assert.rejects(p1, { message: 'stop 1' });
  await tick();
  assert.equal(k.sent.length, 0, 'the aborted queued request was not sent');
  assert.equal(k.lastRef, false);

  const ac2 = new AbortController();
  const p2 = s.request(RTM_NEWLINK, 0, Buffer.from([2]), { signal: ac2.signal });
  await tick();
  ac2.abort();
  await assert.rejects(p2, { name: 'AbortError' });
  k.reply(ack(k.requests[0]!.seq));
  assert.equal(s.stats.lateReplies, 1);

  const ac3 = new AbortController();
  ac3.abort();
  await assert.rejects(s.request(RTM_NEWLINK, 0, Buffer.alloc(0), { signal: ac3.signal }), { name: 'AbortError' });
  s.close();
});

test('an aborted running dump keeps the dump slot until its DONE, then the next dump starts', async () => {
  const k = new FakeKernel();
  const s = open(k);
  const ac = new AbortController();
  const d1 = s.request(RTM_GETLINK, NLM_F_DUMP, Buffer.alloc(16), { signal: ac.signal });
  const d2 = s.request(RTM_GETADDR, NLM_F_DUMP, Buffer.alloc(8));
  await tick();
  ac.abort();
  await assert.rejects(d1, { name: 'AbortError' });
  await tick();
  assert.equal(k.requests.length, 1, 'the kernel is still busy with the first dump');
  const r1 = k.requests[0]!;
  k.reply(part(r1.seq, 1), done(r1.seq));
  await tick();
  const r2 = k.requests[1]!;
  assert.equal(r2.type, RTM_GETADDR);
  k.reply(done(r2.seq));
  assert.deepEqual(await d2, []);
  assert.equal(s.stats.lateReplies, 1);
  s.close();
});

test('maxInFlight bounds unanswered requests; the rest go out as answers arrive, in order', async () => {
  const k = new FakeKernel();
  const s = open(k, { maxInFlight: 4 });
  const ps = Array.from({ length: 10 }, (_, i) => s.request(RTM_NEWLINK, 0, Buffer.from([i])));
  await tick();
  assert.equal(k.requests.length, 4);
  assert.equal(s.stats.queued, 6);
  k.reply(...k.requests.slice(0, 3).map((r) => ack(r.seq)));
  await tick();
  assert.equal(k.requests.length, 7);
  k.reply(...k.requests.slice(3).map((r) => ack(r.seq)));
  await tick();
  k.reply(...k.requests.slice(7).map((r) => ack(r.seq)));
  await Promise.all(ps);
  assert.deepEqual(k.requests.map((r) => r.payload[0]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  s.close();
});

test('corked datagrams stay within MAX_DATAGRAM; a larger single request goes alone', async () => {
  const k = new FakeKernel();
  const s = open(k);
  const big = Buffer.alloc(30_000);
  const ps = [s.request(RTM_NEWLINK, 0, big), s.request(RTM_NEWLINK, 0, big), s.request(RTM_NEWLINK, 0, big)];
  ps.push(s.request(RTM_NEWLINK, 0, Buffer.alloc(MAX_DATAGRAM + 100)));
  await tick();
  assert.deepEqual(k.sent.map((d) => decodeNlMsgs(d).length), [2, 1, 1]);
  assert.ok(k.sent.slice(0, 2).every((d) => d.length <= MAX_DATAGRAM));
  k.reply(...k.requests.map((r) => ack(r.seq)));
  await Promise.all(ps);
  s.close();
});

test('a failed send rejects the requests of that datagram with the errno', async () => {
  const k = new FakeKernel();
  const s = open(k);
  k.failNextSend = Object.assign(new Error('sendto failed'), { code: 'EPERM', errno: 1 });
  const p = s.request(RTM_NEWLINK, 0, Buffer.alloc(16), { op: 'x' });
  await assert.rejects(p, (e) => e instanceof NetlinkError && e.code === 'EPERM' && e.op === 'x');
  assert.equal(s.stats.inFlight, 0);
  assert.equal(k.lastRef, false);
  s.close();
});

test('ENOBUFS: a barrier tells which answers were lost; those reject with ENOBUFS, the rest resolve', async () => {
  const k = new FakeKernel();
  const s = open(k);
  const ps = Array.from({ length: 4 }, () => s.request(RTM_NEWLINK, 0, Buffer.alloc(16)));
  const dump = s.request(RTM_GETLINK, NLM_F_DUMP, Buffer.alloc(16));
  await tick();
  const reqs = k.requests;
  // The kernel managed to queue the answers to 0 and 2, then overflowed.
  k.deliver(ENOBUFS, [Buffer.concat([ack(reqs[0]!.seq), ack(reqs[2]!.seq)])]);
  await tick();
  const barrier = k.requests[5]!;
  assert.equal(barrier.type, NLMSG_NOOP);
  assert.equal(barrier.flags, NLM_F_REQUEST | NLM_F_ACK);
  const later = s.request(RTM_NEWLINK, 0, Buffer.alloc(16));
  await tick();
  k.reply(ack(barrier.seq));
  assert.deepEqual(await ps[0], []);
  assert.deepEqual(await ps[2], []);
  await assert.rejects(ps[1]!, (e) => e instanceof NetlinkError && e.code === 'ENOBUFS' && /may or may not/.test(e.message));
  await assert.rejects(ps[3]!, (e) => e instanceof NetlinkError && e.code === 'ENOBUFS');
  // Sent after the barrier: still awaited. The dump is not affected.
  k.reply(ack(k.requests[6]!.seq), part(reqs[4]!.seq, 1), done(reqs[4]!.seq));
  assert.deepEqual(await later, []);
  assert.deepEqual(tags(await dump), [1]);
  assert.equal(s.stats.overruns, 1);
  s.close();
});

function monitor(k: FakeKernel, groups: number[], options: DriverMonitorOptions = {}): ReturnType<typeof NetlinkSocket.monitor> {
  const o: DriverMonitorOptions = { ...options, driver: k.factory };
  return NetlinkSocket.monitor(groups, o);
}

/** Tracks which promises have settled, without awaiting them (a hang shows as "unsettled"). */
function track<T>(ps: Promise<T>[]): { settled: () => boolean[]; results: Promise<PromiseSettledResult<T>[]> } {
  const state = ps.map(() => false);
  ps.forEach((p, i) => p.then(() => (state[i] = true), () => (state[i] = true)));
  return { settled: () => [...state], results: Promise.allSettled(ps) };
}
const isLost = (r: PromiseSettledResult<unknown> | undefined): boolean =>
  r?.status === 'rejected' && r.reason instanceof NetlinkError && r.reason.code === 'ENOBUFS' && /may or may not/.test(r.reason.message);

test('ENOBUFS twice in a row, the first barrier\'s own ack lost: a second barrier settles every request', async () => {
  const k = new FakeKernel();
  const s = open(k);
  const ps = Array.from({ length: 4 }, () => s.request(RTM_NEWLINK, 0, Buffer.alloc(16)));
  await tick();
  const reqs = k.requests;
  k.deliver(ENOBUFS, [ack(reqs[0]!.seq)]);
  await tick();
  const b1 = k.requests[4]!;
  assert.equal(b1.type, NLMSG_NOOP);
  // Sent after the first barrier, answered later.
  const mid = s.request(RTM_NEWLINK, 0, Buffer.alloc(16));
  await tick();
  // The queue overflowed again: the answer to request 2 made it, the first barrier's ack did not.
  k.deliver(ENOBUFS, [ack(reqs[2]!.seq)]);
  await tick();
  const after = k.requests.slice(6);
  const b2 = after.find((m) => m.type === NLMSG_NOOP);
  assert.ok(b2, 'a new barrier is sent after the second overrun');
  assert.equal(b2.flags, NLM_F_REQUEST | NLM_F_ACK);
  const t = track([...ps, mid]);
  k.reply(ack(b2.seq));
  for (let i = 0; i < 5; i++) await tick();
  assert.deepEqual(t.settled(), [true, true, true, true, true], 'every request sent before the second barrier settles');
  const r = await t.results;
  assert.equal(r[0]!.status, 'fulfilled');
  assert.equal(r[2]!.status, 'fulfilled');
  assert.ok(isLost(r[1]) && isLost(r[3]) && isLost(r[4]), 'the unanswered ones lost their answers');
  assert.equal(s.stats.overruns, 2);
  assert.equal(s.stats.inFlight, 0, 'the lost first barrier is not left in flight');
  // The socket keeps working, and a later overrun gets a barrier of its own.
  const again = s.request(RTM_NEWLINK, 0, Buffer.alloc(16));
  await tick();
  k.deliver(ENOBUFS, []);
  await tick();
  const b3 = k.requests.at(-1)!;
  assert.equal(b3.type, NLMSG_NOOP);
  k.reply(ack(b3.seq));
  assert.ok(isLost(await Promise.allSettled([again]).then((x) => x[0])));
  s.close();
});

test('a malformed barrier ack still settles the requests before it; the next overrun gets a new barrier', async () => {
  const k = new FakeKernel();
  const s = open(k);
  const ps = Array.from({ length: 3 }, () => s.request(RTM_NEWLINK, 0, Buffer.alloc(16)));
  await tick();
  const reqs = k.requests;
  k.deliver(ENOBUFS, [ack(reqs[1]!.seq)]);
  await tick();
  const b1 = k.requests[3]!;
  assert.equal(b1.type, NLMSG_NOOP);
  const t = track(ps);
  // An NLMSG_ERROR for the barrier whose body is cut short inside the echoed header (8 bytes).
  k.reply(encodeNlMsg({ type: NLMSG_ERROR, flags: 0, seq: b1.seq, payload: Buffer.alloc(8) }));
  for (let i = 0; i < 5; i++) await tick();
  assert.deepEqual(t.settled(), [true, true, true]);
  const r = await t.results;
  assert.ok(isLost(r[0]) && r[1]!.status === 'fulfilled' && isLost(r[2]));
  const later = s.request(RTM_NEWLINK, 0, Buffer.alloc(16));
  await tick();
  k.deliver(ENOBUFS, []);
  await tick();
  const b2 = k.requests.at(-1)!;
  assert.equal(b2.type, NLMSG_NOOP, 'a barrier is sent for the next overrun');
  k.reply(ack(b2.seq));
  assert.ok(isLost((await Promise.allSettled([later]))[0]));
  s.close();
});

test('an undecodable datagram may have held answers: a barrier settles what it may have held', async () => {
  const k = new FakeKernel();
  const s = open(k);
  const ps = Array.from({ length: 2 }, () => s.request(RTM_NEWLINK, 0, Buffer.alloc(16)));
  await tick();
  const reqs = k.requests;
  k.deliver(0, [Buffer.concat([ack(reqs[0]!.seq)]), Buffer.from([1, 2, 3])]);
  await tick();
  const b = k.requests[2]!;
  assert.equal(b.type, NLMSG_NOOP);
  const t = track(ps);
  k.reply(ack(b.seq));
  for (let i = 0; i < 5; i++) await tick();
  assert.deepEqual(t.settled(), [true, true]);
  const r = await t.results;
  assert.equal(r[0]!.status, 'fulfilled');
  const lost = r[1]!;
  assert.ok(lost.status === 'rejected' && lost.reason instanceof NetlinkError && lost.reason.code === 'EBADMSG' && /did not decode/.test(lost.reason.message));
  assert.equal(s.stats.malformed, 1);
  s.close();
});

test('any other receive error fails every pending request with that errno and closes the socket', async () => {
  const k = new FakeKernel();
  const s = open(k);
  const sent = s.request(RTM_NEWLINK, 0, Buffer.alloc(16), { op: 'sent' });
  await tick();
  const queued = s.request(RTM_NEWLINK, 0, Buffer.alloc(16), { op: 'queued' });
  k.deliver(constants.errno.EBADF, []);
  for (const [p, op] of [[sent, 'sent'], [queued, 'queued']] as const) {
    await assert.rejects(p, (e) => e instanceof NetlinkError && e.code === 'EBADF' && e.op === op);
  }
  assert.equal(s.isClosed, true);
  assert.equal(k.closed, 1);
  assert.equal(k.lastRef, false);
});

test('the socket holds the event loop only while requests are pending', async () => {
  const k = new FakeKernel();
  const s = open(k);
  assert.deepEqual(k.refs, []);
  const a = s.request(RTM_NEWLINK, 0, Buffer.alloc(16));
  const b = s.request(RTM_NEWLINK, 0, Buffer.alloc(16));
  assert.deepEqual(k.refs, [true]);
  await tick();
  k.reply(ack(k.requests[0]!.seq));
  await a;
  assert.deepEqual(k.refs, [true], 'still one pending');
  k.reply(ack(k.requests[1]!.seq));
  await b;
  assert.deepEqual(k.refs, [true, false]);
  s.close();
});

test('bad arguments reject with ValidationError before anything is sent', async () => {
  const k = new FakeKernel();
  const s = open(k);
  await assert.rejects(s.request(0x10000, 0, Buffer.alloc(0)), (e) => e instanceof ValidationError && e.field === 'type');
  await assert.rejects(s.request(16, 0x10000, Buffer.alloc(0)), (e) => e instanceof ValidationError && e.field === 'flags');
  await assert.rejects(s.request(16, 0, [] as unknown as Buffer), (e) => e instanceof ValidationError && e.field === 'payload');
  await assert.rejects(s.request(16, 0, Buffer.alloc(0), { timeoutMs: 0 }), (e) => e instanceof ValidationError && e.field === 'timeoutMs');
  assert.throws(() => open(k, { maxInFlight: 0 }), (e) => e instanceof ValidationError && e.field === 'maxInFlight');
  assert.throws(() => open(k, { rcvbuf: 10 }), (e) => e instanceof ValidationError && e.field === 'rcvbuf');
  await tick();
  assert.equal(k.sent.length, 0);
  assert.deepEqual(k.refs, []);
  s.close();
});

// ------------------------------------------------------------------ monitor

test('monitor: joins the groups, yields notifications, ENOBUFS becomes { overrun: true }, break closes', async () => {
  const k = new FakeKernel();
  const mon = monitor(k, [1, 5]);
  assert.deepEqual(k.groups, [1, 5]);
  k.reply(part(0, 1, 0), part(0, 2, 0));
  k.deliver(ENOBUFS, []);
  k.reply(part(0, 3, 0));
  const seen: Array<number | 'overrun'> = [];
  for await (const item of mon) {
    seen.push('overrun' in item ? 'overrun' : item.payload[0]!);
    if (seen.length === 4) break;
  }
  assert.deepEqual(seen, [1, 2, 'overrun', 3]);
  assert.equal(k.closed, 1);
  assert.deepEqual(await mon.next(), { value: undefined, done: true });
});

test('monitor: holds the event loop only while next() waits; abort ends the iteration with the reason', async () => {
  const k = new FakeKernel();
  const ac = new AbortController();
  const mon = monitor(k, [1], { signal: ac.signal });
  assert.deepEqual(k.refs, []);
  const waiting = mon.next();
  assert.deepEqual(k.refs, [true]);
  k.reply(part(0, 9, 0));
  const first = await waiting;
  assert.equal(first.done, false);
  assert.deepEqual(k.refs, [true, false]);
  const pending = mon.next();
  ac.abort(new Error('enough'));
  await assert.rejects(pending, { message: 'enough' });
  assert.equal(k.closed, 1);
  assert.equal(k.lastRef, false);
});

test('monitor: beyond highWaterMark unread notifications are replaced by one overrun', async () => {
  const k = new FakeKernel();
  const mon = monitor(k, [1], { highWaterMark: 3 });
  k.reply(part(0, 1, 0), part(0, 2, 0), part(0, 3, 0), part(0, 4, 0), part(0, 5, 0));
  const got: unknown[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await mon.next();
    got.push(r.value && 'overrun' in r.value ? 'overrun' : (r.value as NlMsg).payload[0]);
  }
  assert.deepEqual(got, ['overrun', 4, 5]);
  assert.equal(mon.overruns, 1);
  assert.equal(mon.dropped, 3);
  await mon.return();
});

test('monitor: bad groups are rejected before a socket is opened', () => {
  const k = new FakeKernel();
  assert.throws(() => monitor(k, []), (e) => e instanceof ValidationError && e.field === 'groups');
  assert.throws(() => monitor(k, [0]), (e) => e instanceof ValidationError && e.field === 'groups[0]');
  assert.equal(k.closed, 0);
  assert.deepEqual(k.groups, []);
});
