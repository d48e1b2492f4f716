// Unit tests of traffic control: what iproute2's tc sends (captured with strace by
// fixtures/capture-tc.ts) is the oracle for our requests, byte for byte — rate tables, tick
// conversions, attribute layout, flags; the kernel's dump of the same qdiscs and classes must read
// as `tc -j qdisc show` and `tc -d class show` print them. Plus rates, handles and validation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { codec, ValidationError, parseRate, type QdiscSpec, type ClassSpec } from '@vmhost/net';
import { newQdiscs } from '../../packages/net/src/tc/qdiscs.js';
import { newClasses } from '../../packages/net/src/tc/classes.js';
import { toClass, toQdisc } from '../../packages/net/src/tc/tc.js';
import { formatHandle, parseHandle } from '../../packages/net/src/tc/handle.js';
import { DEFAULT_PSCHED, parsePsched, rateTable, xmitSize, xmitTime } from '../../packages/net/src/tc/rate.js';
import { fakeKernel } from '../helpers/fake-kernel.js';
import { tcClassLines, tcRate, tcSize } from '../helpers/tc-text.js';
import { rng } from '../helpers/rng.js';

interface Raw { type: number; flags: number; payload: string }
const fx = JSON.parse(readFileSync(new URL('./fixtures/tc-messages.json', import.meta.url), 'utf8')) as {
  psched: string;
  ifindex: Record<string, number>;
  requests: Array<Raw & { command: string }>;
  dump: { qdiscs: Raw[]; classes: Raw[] };
  oracle: { tcQdiscJson: Array<Record<string, unknown> & { options: Record<string, unknown> }>; tcClassText: string };
};
const T = codec.tcConstants;
const hex = (m: { payload: string }): Buffer => Buffer.from(m.payload, 'hex');

/** The spec of each captured tc command (`dev` as the index it had: no link lookup needed). */
function specOf(command: string): { what: 'qdisc' | 'class'; op: 'add' | 'replace' | 'change'; spec: QdiscSpec | ClassSpec } {
  const a = command.split(' ').slice(1);
  const what = a[0] as 'qdisc' | 'class';
  const op = a[1] as 'add' | 'replace' | 'change';
  const dev = fx.ifindex[a[3]!] as unknown as string;
  const kv = (k: string): string | undefined => (a.includes(k) ? a[a.indexOf(k) + 1] : undefined);
  const num = (k: string): number | undefined => (kv(k) === undefined ? undefined : Number(kv(k)));
  const size = (k: string): number | undefined => (kv(k)?.endsWith('k') ? Number(kv(k)!.slice(0, -1)) * 1024 : num(k));
  const place: { dev: string; parent?: string; handle?: string } = { dev };
  if (kv('parent') !== undefined && what === 'qdisc') place.parent = kv('parent')!;
  if (kv('handle') !== undefined) place.handle = kv('handle')!;
  const kind = a.find((x) => ['htb', 'tbf', 'pfifo', 'bfifo', 'ingress'].includes(x))!;
  let spec: Record<string, unknown>;
  if (what === 'class') {
    spec = { kind, dev, parent: kv('parent'), classid: kv('classid'), rate: kv('rate') };
    for (const [k, f] of [['ceil', kv], ['burst', size], ['cburst', size], ['quantum', num], ['prio', num], ['mtu', num], ['mpu', num]] as const) {
      if (f(k) !== undefined) spec[k] = f(k);
    }
  } else if (kind === 'htb') {
    spec = { kind, ...place };
    if (kv('default') !== undefined) spec.defaultClass = parseInt(kv('default')!, 16);
    if (kv('r2q') !== undefined) spec.r2q = num('r2q');
    if (kv('direct_qlen') !== undefined) spec.directQlen = num('direct_qlen');
  } else if (kind === 'tbf') {
    spec = { kind, ...place, rate: kv('rate'), burst: num('burst') };
    if (kv('latency') !== undefined) spec.latency = Number(kv('latency')!.replace('ms', '')) / 1000;
    for (const k of ['limit', 'mtu'] as const) if (kv(k) !== undefined) spec[k] = num(k);
    if (kv('peakrate') !== undefined) spec.peakrate = kv('peakrate');
  } else if (kind === 'ingress') {
    spec = { kind, dev };
  } else {
    spec = { kind, ...place, limit: num('limit') };
  }
  return { what, op, spec: spec as unknown as QdiscSpec };
}

test('every request equals what tc sends, byte for byte: type, flags, tcmsg, kind, options with rate tables', async () => {
  assert.deepEqual(parsePsched(fx.psched), DEFAULT_PSCHED); // the captures were made with the defaults' clock
  for (const r of fx.requests) {
    const { ctx, sent, sock } = fakeKernel();
    const { what, op, spec } = specOf(r.command);
    if (what === 'qdisc') await newQdiscs(ctx)[op](spec as QdiscSpec);
    else await newClasses(ctx)[op](spec as ClassSpec);
    const m = sent[sent.length - 1]!; // a class under a class first reads its parent (RTM_GETTCLASS)
    assert.equal(m.type, r.type, r.command);
    assert.equal(m.flags, r.flags, `${r.command}: flags`);
    assert.equal(m.payload.toString('hex'), r.payload, r.command);
    if (what === 'class' && (spec as ClassSpec).parent !== '1:') {
      assert.equal(sent.length, 2);
      assert.equal(sent[0]!.type, T.RTM_GETTCLASS);
      assert.equal(codec.decodeTcMessage(sent[0]!.payload).header.handle, parseHandle((spec as ClassSpec).parent, "parent"), `${r.command} ${sent[0]!.payload.toString("hex")}`);
    }
    sock.close();
  }
});

test('decoding tc\'s requests gives the options they carry, and encoding them again gives the same bytes', () => {
  for (const r of fx.requests) {
    const d = codec.decodeTcMessage(hex(r));
    assert.ok(!Buffer.isBuffer(d.attrs.options) || d.attrs.kind === undefined, r.command);
    assert.equal(codec.encodeTcMessage(d).toString('hex'), r.payload, r.command);
  }
  const cls = codec.decodeTcMessage(hex(fx.requests[2]!)); // rate 10mbit ceil 20mbit burst 15k cburst 3000 quantum 1500 prio 2
  const o = cls.attrs.options as codec.HtbOptions;
  assert.deepEqual([o.parms!.rate.rate, o.parms!.ceil.rate, o.parms!.quantum, o.parms!.prio, o.parms!.rate.cellLog, o.parms!.rate.linklayer], [1_250_000, 2_500_000, 1500, 2, 3, 1]);
  assert.equal(o.parms!.buffer, xmitTime(1_250_000, 15 * 1024));
  assert.deepEqual(o.rtab, rateTable(1_250_000, { mtu: 1600 }).table);
  assert.deepEqual(o.ctab, rateTable(2_500_000, { mtu: 1600 }).table);
  const wide = codec.decodeTcMessage(hex(fx.requests[3]!)).attrs.options as codec.HtbOptions; // 40gbit: beyond 32 bits
  assert.deepEqual([wide.rate64, wide.ceil64, wide.parms!.rate.rate], [5_000_000_000n, 6_250_000_000n, 0xffffffff]);
});

test('the kernel\'s dump reads as tc prints it: qdiscs (tc -j qdisc show) and classes (tc -d class show)', () => {
  const names = new Map(Object.entries(fx.ifindex).map(([n, i]) => [i, n]));
  const ours = fx.dump.qdiscs.map((m) => toQdisc(codec.decodeTcMessage(hex(m)), names, DEFAULT_PSCHED));
  const theirs = fx.oracle.tcQdiscJson.filter((q) => q.kind !== 'noqueue');
  assert.equal(ours.filter((q) => q.kind !== 'noqueue').length, theirs.length);
  for (const t of theirs) {
    const q = ours.find((x) => x.dev === t.dev && x.handle === t.handle)!;
    assert.ok(q, `qdisc ${String(t.dev)} ${String(t.handle)}`);
    assert.equal(q.kind, t.kind);
    assert.equal(q.parent, t.root ? 'root' : t.parent);
    const o = t.options;
    if (q.kind === 'htb') {
      assert.deepEqual([q.htb!.r2q, q.htb!.directQlen, q.htb!.directPackets], [o.r2q, o.direct_qlen, o.direct_packets_stat]);
      assert.equal(q.htb!.defaultClass, o.default === '0' ? null : `${q.handle}${parseInt(String(o.default), 16).toString(16)}`);
    } else if (q.kind === 'tbf') {
      assert.deepEqual([q.tbf!.rate / 8, q.tbf!.burst], [o.rate, o.burst]);
      assert.equal(Math.trunc(q.tbf!.latency * 1e6), o.lat);
      assert.equal(q.tbf!.mtu, (o.minburst as number | undefined) ?? null);
    } else if (q.kind === 'pfifo' || q.kind === 'bfifo') {
      assert.equal(q.fifo!.limit, o.limit);
    }
  }
  const classes = fx.dump.classes.map((m) => toClass(codec.decodeTcMessage(hex(m)), names, DEFAULT_PSCHED));
  const lines = tcClassLines(fx.oracle.tcClassText);
  assert.equal(classes.length, lines.length);
  for (const line of lines) {
    const kv = line.get;
    const c = classes.find((x) => x.classid === line.classid)!;
    assert.ok(c, line.classid);
    assert.equal(c.parent, line.parent);
    assert.equal(c.leaf, kv('leaf') ?? null);
    assert.equal(c.htb!.rate, tcRate(kv('rate')!));
    assert.equal(c.htb!.ceil, tcRate(kv('ceil')!));
    assert.ok(Math.abs(c.htb!.burst - tcSize(kv('burst')!.split('/')[0]!)) < 16, line.classid);
    assert.ok(Math.abs(c.htb!.cburst - tcSize(kv('cburst')!.split('/')[0]!)) < 16, line.classid);
    assert.equal(c.htb!.level, Number(kv('level')));
    if (kv('prio') !== undefined) assert.equal(c.htb!.prio, Number(kv('prio')));
    if (kv('quantum') !== undefined) assert.equal(c.htb!.quantum, Number(kv('quantum')));
  }
});

test('dump messages re-encode to the same attributes (unknown ones kept)', () => {
  for (const m of [...fx.dump.qdiscs, ...fx.dump.classes]) {
    const b = hex(m);
    const again = codec.encodeTcMessage(codec.decodeTcMessage(b));
    assert.deepEqual(again.subarray(0, T.TCMSG_LEN), b.subarray(0, T.TCMSG_LEN));
    // Compared as sets, TCA_OPTIONS of htb/tbf one level down: the kernel dumps the 64-bit rates after PARMS.
    const nestedOptions = ['htb', 'tbf'].includes(codec.decodeTcMessage(b).attrs.kind ?? '');
    const set = (x: Buffer): string[] =>
      codec.parseAttrs(x, T.TCMSG_LEN).map((a) => {
        const data = a.type === T.TCA_OPTIONS && nestedOptions ? codec.parseAttrs(a.data).map((i) => `${i.type}=${i.data.toString('hex')}`).sort().join(',') : a.data.toString('hex');
        return `${a.type}:${data}`;
      }).sort();
    assert.deepEqual(set(again), set(b));
  }
});

test('rates, ticks and handles as tc reads and prints them', () => {
  assert.equal(parseRate('10mbit', 'rate'), 10_000_000);
  assert.equal(parseRate('1Gbit', 'rate'), 1e9);
  assert.equal(parseRate('500kbps', 'rate'), 4_000_000);
  assert.equal(parseRate('1mibit', 'rate'), 1024 * 1024);
  assert.equal(parseRate(2_000_000, 'rate'), 2_000_000);
  for (const bad of ['10 furlongs', '', 'mbit', -5, 4, Infinity, null, '1e3mbit']) {
    assert.throws(() => parseRate(bad, 'rate'), (e: unknown) => e instanceof ValidationError && e.field === 'rate', String(bad));
  }
  // 1600 bytes at 10 Mbit/s: 1280 us = 20000 ticks of 64 ns, and back.
  assert.equal(xmitTime(1_250_000, 1600), 20000);
  assert.equal(xmitSize(1_250_000, 20000), 1600);
  assert.equal(parsePsched('not psched'), undefined);
  for (const [text, h] of [['1:', 0x10000], ['1:10', 0x10010], ['ffff:', 0xffff0000], ['a:b', 0xa000b]] as const) {
    assert.equal(parseHandle(text, 'h'), h);
    assert.equal(formatHandle(h), text);
  }
  assert.equal(formatHandle(T.TC_H_ROOT), 'root');
  assert.equal(formatHandle(T.TC_H_INGRESS), 'ffff:fff1');
  for (const [v, kind] of [['1:10', 'qdisc'], ['1:', 'class'], [':10', 'any'], ['g:', 'any'], ['1:2:3', 'any'], [-1, 'any']] as const) {
    assert.throws(() => parseHandle(v, 'h', kind), ValidationError, `${String(v)} as ${kind}`);
  }
});

test('invalid qdisc and class specs: ValidationError naming the field, nothing sent', async () => {
  const { ctx, sent, sock } = fakeKernel();
  const q = newQdiscs(ctx);
  const c = newClasses(ctx);
  const qcases: Array<[unknown, string]> = [
    [{ kind: 'sfq', dev: 'eth0' }, 'kind'],
    [{ kind: 'htb', dev: 'eth/0' }, 'dev'],
    [{ kind: 'htb', dev: 'eth0', handle: '1:5' }, 'handle'],
    [{ kind: 'htb', dev: 'eth0', parent: '1:' }, 'parent'],
    [{ kind: 'htb', dev: 'eth0', handle: '1:', defaultClass: '2:10' }, 'defaultClass'],
    [{ kind: 'htb', dev: 'eth0', r2q: 0 }, 'r2q'],
    [{ kind: 'tbf', dev: 'eth0', rate: '1mbit', burst: 1600 }, 'latency'],
    [{ kind: 'tbf', dev: 'eth0', rate: '1mbit', burst: 1600, latency: 0.05, limit: 3000 }, 'limit'],
    [{ kind: 'tbf', dev: 'eth0', rate: 'fast', burst: 1600, latency: 0.05 }, 'rate'],
    [{ kind: 'tbf', dev: 'eth0', rate: '1mbit', burst: 0, latency: 0.05 }, 'burst'],
    [{ kind: 'tbf', dev: 'eth0', rate: '1mbit', burst: 1600, latency: -1 }, 'latency'],
    [{ kind: 'tbf', dev: 'eth0', rate: '1mbit', burst: 1600, latency: 0.05, peakrate: '2mbit' }, 'mtu'],
    [{ kind: 'ingress', dev: 'eth0', parent: 'root' }, 'parent'],
    [{ kind: 'pfifo', dev: 'eth0', limit: 0 }, 'limit'],
  ];
  for (const [spec, field] of qcases) {
    await assert.rejects(q.add(spec as QdiscSpec), (e: unknown) => e instanceof ValidationError && e.field === field, JSON.stringify(spec));
  }
  const ccases: Array<[unknown, string]> = [
    [{ kind: 'tbf', dev: 'eth0', parent: '1:', classid: '1:10', rate: 1e6 }, 'kind'],
    [{ kind: 'htb', dev: 'eth0', parent: '1:', classid: '1:', rate: 1e6 }, 'classid'],
    [{ kind: 'htb', dev: 'eth0', parent: '2:', classid: '1:10', rate: 1e6 }, 'parent'],
    [{ kind: 'htb', dev: 'eth0', parent: '1:', classid: '1:10' }, 'rate'],
    [{ kind: 'htb', dev: 'eth0', parent: '1:', classid: '1:10', rate: '10mbit', ceil: '5mbit' }, 'ceil'],
    [{ kind: 'htb', dev: 'eth0', parent: '1:', classid: '1:10', rate: 1e6, prio: 8 }, 'prio'],
    [{ kind: 'htb', dev: 'eth0', parent: '1:', classid: '1:10', rate: 1e6, quantum: 0 }, 'quantum'],
    [{ kind: 'htb', dev: 'eth0', parent: '1:', classid: '1:10', rate: 1e6, burst: 1.5 }, 'burst'],
  ];
  for (const [spec, field] of ccases) {
    await assert.rejects(c.add(spec as ClassSpec), (e: unknown) => e instanceof ValidationError && e.field === field, JSON.stringify(spec));
  }
  await assert.rejects(q.delete({ dev: 'eth0', parent: 'nowhere' }), (e: unknown) => e instanceof ValidationError && e.field === 'parent');
  await assert.rejects(c.delete({ dev: 'eth0', classid: '1:' }), (e: unknown) => e instanceof ValidationError && e.field === 'classid');
  assert.equal(sent.length, 0);
  sock.close();
});

test('fuzz: truncated, mutated and random tc messages decode (and list) or throw CodecError only', () => {
  const seeds = [...fx.requests, ...fx.dump.qdiscs, ...fx.dump.classes].map(hex);
  const names = new Map<number, string>();
  const next = rng(0x7c7c7c);
  let cases = 0;
  const run = (b: Buffer): void => {
    cases++;
    try {
      const m = codec.decodeTcMessage(b);
      toQdisc(m, names, DEFAULT_PSCHED);
      toClass(m, names, DEFAULT_PSCHED);
    } catch (err) {
      if (!(err instanceof codec.CodecError)) assert.fail(`threw ${String(err)} on ${b.toString('hex')}`);
    }
  };
  for (const s of seeds) for (let n = 0; n <= s.length; n += s.length > 300 ? 7 : 1) run(s.subarray(0, n));
  for (let i = 0; i < 4000; i++) {
    const b = Buffer.from(seeds[next() % seeds.length]!);
    for (let k = 0; k <= next() % 4; k++) b[next() % Math.min(b.length, 200)] = next() & 0xff;
    run(b);
  }
  for (let i = 0; i < 1000; i++) run(Buffer.from(Array.from({ length: next() % 96 }, () => next() & 0xff)));
  assert.ok(cases > 5000);
});
