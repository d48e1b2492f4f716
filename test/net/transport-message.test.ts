// Netlink framing and nlmsgerr parsing, against bytes captured from the real kernel
// (Linux 6.18, NETLINK_EXT_ACK + NETLINK_CAP_ACK, as our addon opens its sockets).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { netlink, NetlinkDecodeError, ValidationError } from '@vmhost/net';
import { rng } from '../helpers/rng.js';

const {
  encodeNlMsg,
  decodeNlMsgs,
  parseNlmsgerr,
  parseNlmsgDone,
  NLMSG_ERROR,
  NLMSG_DONE,
  NLM_F_MULTI,
  NLM_F_CAPPED,
  NLM_F_ACK_TLVS,
  NLM_F_REQUEST,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_EXCL,
} = netlink;

// Captured with a NetlinkSocket in a fresh namespace (see docs/net-transport.md, "fixtures").
const FIXTURES = {
  // RTM_NEWLINK x0 with IFLA_LINKINFO { IFLA_INFO_KIND "nope" } -> EOPNOTSUPP "Unknown device type"
  unknownKind:
    '3c000000020000037c30cb3084270000a1ffffff38000000100005067c30cb300000000018000100556e6b6e6f776e20646576696365207479706500',
  // RTM_DELLINK ifindex 999 -> ENODEV, no extack
  noDevice: '24000000020000017d30cb3084270000edffffff20000000110005007d30cb3000000000',
  // RTM_SETLINK lo (no change) -> positive ack
  ack: '24000000020000017e30cb30842700000000000020000000130005007e30cb3000000000',
  // RTM_NEWLINK with a 26-byte IFLA_IFNAME -> ERANGE "Attribute failed policy validation", offset 32, policy TLV
  policyOffset:
    '68000000020000034fd0497da6270000deffffff50000000100005064fd0497d0000000027000100417474726962757465206661696c656420706f6c6963792076616c69646174696f6e0000080002002000000014000480080007000f000000080001000b000000',
  // RTM_NEWADDR without IFA_LOCAL -> EINVAL "ipv4: Local address is not supplied"
  addrNoLocal:
    '4c0000000200000351d0497da6270000eaffffff180000001400050651d0497d0000000028000100697076343a204c6f63616c2061646472657373206973206e6f7420737570706c69656400',
  // RTM_GETADDR dump of an empty namespace -> NLMSG_DONE, error 0
  done: '14000000030002008030cb308427000000000000',
};
const hex = (s: string): Buffer => Buffer.from(s, 'hex');

test('encodeNlMsg writes the header, pads to 4 bytes and decodeNlMsgs reads it back', () => {
  for (let n = 0; n < 9; n++) {
    const payload = Buffer.alloc(n, 0xab);
    const buf = encodeNlMsg({ type: 16, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 0xfffffffe, pid: 7, payload });
    assert.equal(buf.length % 4, 0);
    assert.equal(buf.length, (16 + n + 3) & ~3);
    assert.equal(buf.readUInt32LE(0), 16 + n, 'nlmsg_len counts header + payload, not padding');
    assert.ok(buf.subarray(16 + n).every((b) => b === 0), 'padding is zero');
    const [m, ...rest] = decodeNlMsgs(buf);
    assert.equal(rest.length, 0);
    assert.deepEqual({ ...m, payload: [...m!.payload] }, { type: 16, flags: 5, seq: 0xfffffffe, pid: 7, payload: [...payload] });
  }
});

test('encodeNlMsg rejects out-of-range header fields with ValidationError naming the field', () => {
  const payload = Buffer.alloc(0);
  assert.throws(() => encodeNlMsg({ type: 0x10000, flags: 0, seq: 1, payload }), (e) => e instanceof ValidationError && e.field === 'type');
  assert.throws(() => encodeNlMsg({ type: 16, flags: -1, seq: 1, payload }), (e) => e instanceof ValidationError && e.field === 'flags');
  assert.throws(() => encodeNlMsg({ type: 16, flags: 0, seq: 2 ** 32, payload }), (e) => e instanceof ValidationError && e.field === 'seq');
  assert.throws(() => encodeNlMsg({ type: 16, flags: 0, seq: 1.5, payload }), (e) => e instanceof ValidationError && e.field === 'seq');
  assert.throws(
    () => encodeNlMsg({ type: 16, flags: 0, seq: 1, payload: 'x' as unknown as Buffer }),
    (e) => e instanceof ValidationError && e.field === 'payload',
  );
});

test('several messages in one datagram decode in order; the last may lack its padding', () => {
  const a = encodeNlMsg({ type: 16, flags: NLM_F_MULTI, seq: 1, payload: Buffer.from([1, 2, 3]) });
  const b = encodeNlMsg({ type: 17, flags: NLM_F_MULTI, seq: 2, payload: Buffer.from([4, 5, 6, 7, 8]) });
  const c = encodeNlMsg({ type: NLMSG_DONE, flags: NLM_F_MULTI, seq: 3, payload: Buffer.from([9]) });
  const msgs = decodeNlMsgs(Buffer.concat([a, b, c.subarray(0, 17)]));
  assert.deepEqual(
    msgs.map((m) => [m.type, m.seq, [...m.payload]]),
    [
      [16, 1, [1, 2, 3]],
      [17, 2, [4, 5, 6, 7, 8]],
      [NLMSG_DONE, 3, [9]],
    ],
  );
  assert.deepEqual(decodeNlMsgs(Buffer.alloc(0)), []);
});

test('decodeNlMsgs throws NetlinkDecodeError with the offset on malformed datagrams', () => {
  const good = encodeNlMsg({ type: 16, flags: 0, seq: 1, payload: Buffer.alloc(4) });
  const cases: Array<[Buffer, number]> = [
    [good.subarray(0, 10), 0], // shorter than a header
    [Buffer.concat([good, Buffer.alloc(8)]), 20], // trailing bytes
    [Buffer.from(good).fill(0, 0, 4), 0], // nlmsg_len 0
    [(() => { const b = Buffer.from(good); b.writeUInt32LE(21, 0); return b; })(), 0], // runs past the end
  ];
  for (const [buf, offset] of cases) {
    assert.throws(() => decodeNlMsgs(buf), (e) => e instanceof NetlinkDecodeError && e.offset === offset && e.code === 'ENETLINK_DECODE');
  }
});

test('kernel EOPNOTSUPP with extack "Unknown device type" (unknown link kind)', () => {
  const [m] = decodeNlMsgs(hex(FIXTURES.unknownKind));
  assert.equal(m!.type, NLMSG_ERROR);
  assert.equal(m!.flags, NLM_F_CAPPED | NLM_F_ACK_TLVS);
  const e = parseNlmsgerr(m!.payload, m!.flags);
  assert.equal(e.error, 95);
  assert.equal(e.extack?.message, 'Unknown device type');
  assert.equal(e.extack?.offset, undefined);
  assert.deepEqual(e.request, { len: 56, type: 16, flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq: m!.seq, pid: 0 });
});

test('kernel ENODEV without extack, and a positive ack', () => {
  const [m] = decodeNlMsgs(hex(FIXTURES.noDevice));
  assert.deepEqual(parseNlmsgerr(m!.payload, m!.flags).error, 19);
  assert.equal(parseNlmsgerr(m!.payload, m!.flags).extack, undefined);
  const [a] = decodeNlMsgs(hex(FIXTURES.ack));
  const ack = parseNlmsgerr(a!.payload, a!.flags);
  assert.equal(ack.error, 0);
  assert.equal(ack.extack, undefined);
  assert.equal(ack.request?.type, 19);
});

test('kernel policy error carries the offending attribute offset; other extack messages too', () => {
  const [m] = decodeNlMsgs(hex(FIXTURES.policyOffset));
  const e = parseNlmsgerr(m!.payload, m!.flags);
  assert.equal(e.error, 34);
  assert.equal(e.extack?.message, 'Attribute failed policy validation');
  assert.equal(e.extack?.offset, 32, 'IFLA_IFNAME sits right after nlmsghdr (16) + ifinfomsg (16)');
  const [a] = decodeNlMsgs(hex(FIXTURES.addrNoLocal));
  assert.deepEqual(parseNlmsgerr(a!.payload, a!.flags).extack, { message: 'ipv4: Local address is not supplied' });
});

test('uncapped nlmsgerr (the request echoed whole) finds the TLVs after the echoed request', () => {
  // Built by hand: what a socket without NETLINK_CAP_ACK receives.
  const req = encodeNlMsg({ type: 16, flags: 0x605, seq: 9, payload: Buffer.from([1, 2, 3, 4, 5]) }); // 21 bytes + 3 pad
  const msgAttr = Buffer.alloc(12);
  msgAttr.writeUInt16LE(4 + 6, 0);
  msgAttr.writeUInt16LE(1, 2);
  msgAttr.write('hello\0', 4);
  const offs = Buffer.alloc(8);
  offs.writeUInt16LE(8, 0);
  offs.writeUInt16LE(2, 2);
  offs.writeUInt32LE(20, 4);
  const err = Buffer.alloc(4);
  err.writeInt32LE(-22, 0);
  const payload = Buffer.concat([err, req, msgAttr, offs]);
  const parsed = parseNlmsgerr(payload, NLM_F_ACK_TLVS);
  assert.deepEqual(parsed.extack, { message: 'hello', offset: 20 });
  assert.equal(parsed.request?.len, 21);
  // Without ACK_TLVS nothing after the echo is read.
  assert.equal(parseNlmsgerr(payload, 0).extack, undefined);
});

test('NLMSG_DONE: success, and an error with extack TLVs', () => {
  const [m] = decodeNlMsgs(hex(FIXTURES.done));
  assert.equal(m!.type, NLMSG_DONE);
  assert.deepEqual(parseNlmsgDone(m!.payload, m!.flags), { error: 0 });
  const body = Buffer.alloc(4 + 12);
  body.writeInt32LE(-22, 0);
  body.writeUInt16LE(10, 4);
  body.writeUInt16LE(1, 6);
  body.write('oops!\0', 8);
  assert.deepEqual(parseNlmsgDone(body, NLM_F_MULTI | NLM_F_ACK_TLVS), { error: 22, extack: { message: 'oops!' } });
});

test('parseNlmsgerr rejects truncated and malformed bodies with NetlinkDecodeError', () => {
  const [m] = decodeNlMsgs(hex(FIXTURES.policyOffset));
  const full = m!.payload;
  for (const len of [0, 3, 5, 19]) {
    assert.throws(() => parseNlmsgerr(full.subarray(0, len), m!.flags), NetlinkDecodeError, `length ${len}`);
  }
  // Truncated inside the TLVs: attribute runs past the end.
  assert.throws(() => parseNlmsgerr(full.subarray(0, 30), m!.flags), NetlinkDecodeError);
  // A positive "error" (errno must be negative on the wire).
  const bad = Buffer.from(full);
  bad.writeInt32LE(5, 0);
  assert.throws(() => parseNlmsgerr(bad, m!.flags), NetlinkDecodeError);
  // Attribute length below its header.
  const zero = Buffer.from(full);
  zero.writeUInt16LE(2, 20);
  assert.throws(() => parseNlmsgerr(zero, m!.flags), NetlinkDecodeError);
});

// ------------------------------------------------------------------ fuzz


test('fuzz: 100,000 random, mutated and truncated buffers give a result or NetlinkDecodeError, nothing else', () => {
  const next = rng(0x5eed1234);
  const seeds = Object.values(FIXTURES).map(hex);
  // A multi-message datagram as a seed too.
  seeds.push(Buffer.concat([hex(FIXTURES.ack), hex(FIXTURES.unknownKind), hex(FIXTURES.done)]));
  const counts = { ok: 0, decodeError: 0 };
  const check = (fn: () => unknown): void => {
    try {
      fn();
      counts.ok++;
    } catch (err) {
      if (!(err instanceof NetlinkDecodeError)) {
        throw new assert.AssertionError({ message: `unexpected ${String(err)}`, actual: err, expected: NetlinkDecodeError });
      }
      counts.decodeError++;
    }
  };
  for (let i = 0; i < 100_000; i++) {
    let buf: Buffer;
    const mode = next() % 4;
    if (mode === 0) {
      buf = Buffer.alloc(next() % 96);
      for (let j = 0; j < buf.length; j++) buf[j] = next() & 0xff;
    } else {
      const seed = seeds[next() % seeds.length]!;
      buf = Buffer.from(seed);
      if (mode === 1 || mode === 3) {
        const flips = 1 + (next() % 4);
        for (let j = 0; j < flips; j++) buf[next() % buf.length] = next() & 0xff;
      }
      if (mode === 2 || mode === 3) buf = buf.subarray(0, next() % (buf.length + 1));
    }
    check(() => {
      for (const m of decodeNlMsgs(buf)) {
        if (m.type === NLMSG_ERROR) parseNlmsgerr(m.payload, m.flags);
        if (m.type === NLMSG_DONE) parseNlmsgDone(m.payload, m.flags);
      }
    });
    const flags = next() & 0xffff;
    check(() => parseNlmsgerr(buf, flags));
    check(() => parseNlmsgDone(buf, flags));
  }
  // Both outcomes really occurred (the fuzzer is not just producing one kind of input).
  assert.ok(counts.ok > 1000, `ok ${counts.ok}`);
  assert.ok(counts.decodeError > 1000, `decode errors ${counts.decodeError}`);
});
