// Unit tests of traffic-control filters: what iproute2's tc sends to add, replace and delete u32
// filters with mirred actions (captured with strace by fixtures/capture-tc-filter.ts) is the oracle
// for our requests, byte for byte; the kernel's dump of them must read as `tc -j filter show`
// printed it. Plus u32 handles, validation and a fuzz of the decoder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { codec, ValidationError, type FilterRef, type FilterSpec } from '@vmhost/net';
import { newFilters, toFilter } from '../../packages/net/src/tc/filters.js';
import { formatU32Handle, parseU32Handle } from '../../packages/net/src/tc/handle.js';
import { fakeKernel } from '../helpers/fake-kernel.js';
import { rng } from '../helpers/rng.js';

interface Raw { type: number; flags: number; payload: string }
type TcJson = Array<{ protocol: string; pref: number; kind: string; chain: number; options?: Record<string, unknown> & { actions?: Array<Record<string, unknown>>; match?: Record<string, unknown> } }>;
const fx = JSON.parse(readFileSync(new URL('./fixtures/tc-filter-messages.json', import.meta.url), 'utf8')) as {
  ifindex: Record<string, number>;
  requests: Array<Raw & { command: string }>;
  deletes: Array<Raw & { command: string }>;
  dump: { v0: Raw[]; v1: Raw[] };
  oracle: { v0: TcJson; v1: TcJson };
};
const T = codec.tcConstants;
const hex = (m: { payload: string }): Buffer => Buffer.from(m.payload, 'hex');
/** Links by the index they had (the operations take an index as well as a name: no lookup needed). */
const dev = (name: string): string => fx.ifindex[name] as unknown as string;
const redirect = (to: string, o: Partial<{ action: 'redirect' | 'mirror'; direction: 'egress' | 'ingress' }> = {}): FilterSpec['actions'] => [{ kind: 'mirred', action: o.action ?? 'redirect', direction: o.direction ?? 'egress', dev: dev(to) }];

/** The captured commands, in order, as specs. */
const SPECS: Array<{ op: 'add' | 'replace'; spec: FilterSpec }> = [
  { op: 'add', spec: { kind: 'u32', dev: dev('v0'), parent: 'ingress', protocol: 'all', prio: 1, handle: '800::800', actions: redirect('ifb0') } },
  { op: 'add', spec: { kind: 'u32', dev: dev('v0'), parent: 'ffff:', protocol: 'ip', prio: 2, match: [{ value: 0xc0a80000, mask: 0xffff0000, offset: 16 }], actions: redirect('ifb1', { action: 'mirror' }) } },
  { op: 'add', spec: { kind: 'u32', dev: dev('v1'), parent: '1:', protocol: 'ipv6', prio: 5, match: [{ value: 0x11, mask: 0xff, offset: 4 }, { value: 0, mask: 0, offset: 8 }], classid: '1:10' } },
  { op: 'replace', spec: { kind: 'u32', dev: dev('v0'), parent: 'ingress', prio: 1, handle: '800::800', actions: redirect('ifb1') } },
  { op: 'add', spec: { kind: 'u32', dev: dev('v0'), parent: 'ingress', prio: 3, actions: redirect('ifb0', { direction: 'ingress' }) } },
];
const DELETES: FilterRef[] = [
  { dev: dev('v0'), parent: 'ingress', protocol: 'all', prio: 3, handle: '802::800' },
  { dev: dev('v0'), parent: 'ingress', prio: 1 },
];

test('every filter request equals what tc sends, byte for byte: type, flags, tcmsg, kind, u32 selector, mirred action', async () => {
  assert.equal(SPECS.length, fx.requests.length);
  for (const [i, { op, spec }] of SPECS.entries()) {
    const r = fx.requests[i]!;
    const { ctx, sent, sock } = fakeKernel();
    await newFilters(ctx)[op](spec);
    const m = sent[sent.length - 1]!;
    assert.deepEqual([m.type, m.flags, m.payload.toString('hex')], [r.type, r.flags, r.payload], r.command);
    sock.close();
  }
  for (const [i, ref] of DELETES.entries()) {
    const r = fx.deletes[i]!;
    const { ctx, sent, sock } = fakeKernel();
    await newFilters(ctx).delete(ref);
    assert.deepEqual([sent[0]!.type, sent[0]!.flags, sent[0]!.payload.toString('hex')], [r.type, r.flags, r.payload], r.command);
    sock.close();
  }
});

test('tc\'s requests decode to what they carry and encode again to the same bytes', () => {
  for (const r of fx.requests) {
    const d = codec.decodeFilterMessage(hex(r));
    assert.ok(!Buffer.isBuffer(d.attrs.options), r.command);
    assert.equal(codec.encodeFilterMessage(d).toString('hex'), r.payload, r.command);
  }
  const o = codec.decodeFilterMessage(hex(fx.requests[1]!)).attrs.options as codec.U32Options;
  assert.deepEqual(o.sel!.keys, [{ value: 0xc0a80000, mask: 0xffff0000, offset: 16, offmask: 0 }]);
  assert.equal(o.sel!.flags, T.TC_U32_TERMINAL);
  const mirred = o.actions![0]!;
  assert.equal(mirred.kind, 'mirred');
  assert.deepEqual((mirred.options as codec.MirredOptions).parms, { index: 0, capab: 0, action: T.TC_ACT_PIPE, refcnt: 0, bindcnt: 0, eaction: T.TCA_EGRESS_MIRROR, ifindex: fx.ifindex.ifb1 });
  const flow = codec.decodeFilterMessage(hex(fx.requests[2]!)).attrs.options as codec.U32Options;
  assert.deepEqual([flow.classid, flow.actions, flow.sel!.keys.length], [0x10010, undefined, 2]);
});

test('the kernel\'s dump reads as tc -j filter show prints it: classifier entries, hash tables, nodes with keys and actions', () => {
  const names = new Map(Object.entries(fx.ifindex).map(([n, i]) => [i, n]));
  for (const d of ['v0', 'v1'] as const) {
    const ours = fx.dump[d].map((m) => toFilter(codec.decodeFilterMessage(hex(m)), names));
    const theirs = fx.oracle[d];
    assert.equal(ours.length, theirs.length, d);
    theirs.forEach((t, i) => {
      const f = ours[i]!;
      const at = `${d}[${i}]`;
      assert.deepEqual([f.dev, f.kind, f.protocol, f.prio, f.chain], [d, t.kind, t.protocol, t.pref, t.chain], at);
      assert.equal(f.parent, d === 'v0' ? 'ffff:' : '1:', at);
      const o = t.options;
      if (!o) {
        assert.equal(f.handle, null, at);
        assert.equal(f.u32, undefined, at);
        return;
      }
      assert.equal(f.handle, o.fh, at);
      assert.equal(f.u32!.divisor, (o.ht_divisor as number | undefined) ?? null, at);
      assert.equal(f.u32!.hashTable, (o.key_ht as string | undefined) ?? null, at);
      assert.equal(f.u32!.classid, (o.flowid as string | undefined) ?? null, at);
      if (o.match) {
        // tc prints one "match" key per selector key; JSON.parse keeps the last
        const k = f.u32!.match[f.u32!.match.length - 1]!;
        assert.deepEqual([k.value.toString(16), k.mask.toString(16), k.offset], [o.match.value, o.match.mask, o.match.off], at);
      }
      assert.equal(f.u32!.actions.length, o.actions?.length ?? 0, at);
      (o.actions ?? []).forEach((ta, j) => {
        const a = f.u32!.actions[j]!;
        assert.deepEqual([a.order, a.kind, a.index, a.mirred?.action, a.mirred?.direction, a.mirred?.dev], [ta.order, ta.kind, ta.index, ta.mirred_action, ta.direction, ta.to_dev], `${at} action ${j}`);
      });
    });
  }
});

test('dump messages re-encode to the same attributes (unknown ones kept)', () => {
  for (const m of [...fx.dump.v0, ...fx.dump.v1]) {
    const b = hex(m);
    const d = codec.decodeFilterMessage(b);
    const again = codec.decodeFilterMessage(codec.encodeFilterMessage(d));
    assert.deepEqual(again, d);
  }
});

test('u32 handles as tc prints and reads them', () => {
  for (const [text, h] of [['800::800', 0x80000800], ['801:2:3', 0x80102003], ['fff:ff:fff', 0xfffff_fff]] as const) {
    assert.equal(parseU32Handle(text, 'h'), h);
    assert.equal(formatU32Handle(h), text);
  }
  assert.equal(formatU32Handle(0x80000000), '800:');
  assert.equal(formatU32Handle(0), '');
  for (const bad of ['800:', '0::800', '800::0', '1000::1', '800:100:1', 'x::1', 0x80000800]) {
    assert.throws(() => parseU32Handle(bad, 'handle'), (e: unknown) => e instanceof ValidationError && e.field === 'handle', String(bad));
  }
});

test('invalid filter specs: ValidationError naming the field, nothing sent', async () => {
  const { ctx, sent, sock } = fakeKernel();
  const f = newFilters(ctx);
  const base = { kind: 'u32', dev: 'eth0', parent: 'ingress', prio: 1 };
  const cases: Array<[unknown, string]> = [
    [null, 'filter'],
    [{ ...base, kind: 'flower' }, 'kind'],
    [{ ...base, dev: 'eth/0' }, 'dev'],
    [{ ...base, parent: 'root' }, 'parent'],
    [{ ...base, parent: 'up' }, 'parent'],
    [{ ...base, prio: 0 }, 'prio'],
    [{ ...base, prio: 65536 }, 'prio'],
    [{ ...base, protocol: 'ipx' }, 'protocol'],
    [{ ...base, protocol: 0x10000 }, 'protocol'],
    [{ ...base, handle: '800:' }, 'handle'],
    [{ ...base, match: [] }, 'match'],
    [{ ...base, match: [{ value: 1 }] }, 'match[0].mask'],
    [{ ...base, match: [{ value: 2 ** 32, mask: 0 }] }, 'match[0].value'],
    [{ ...base, match: [{ value: 0, mask: 0, offset: 2 }] }, 'match[0].offset'],
    [{ ...base, classid: '1:' }, 'classid'],
    [{ ...base, actions: [{ kind: 'gact' }] }, 'actions[0].kind'],
    [{ ...base, actions: [{ kind: 'mirred', action: 'steal', dev: 'ifb0' }] }, 'actions[0].action'],
    [{ ...base, actions: [{ kind: 'mirred', action: 'redirect', direction: 'sideways', dev: 'ifb0' }] }, 'actions[0].direction'],
    [{ ...base, actions: [{ kind: 'mirred', action: 'redirect', dev: 'ifb/0' }] }, 'actions[0].dev'],
  ];
  for (const [spec, field] of cases) {
    await assert.rejects(f.add(spec as FilterSpec), (e: unknown) => e instanceof ValidationError && e.field === field, JSON.stringify(spec));
  }
  await assert.rejects(f.delete({ dev: 'eth0', parent: 'ingress', prio: 0 }), (e: unknown) => e instanceof ValidationError && e.field === 'prio');
  await assert.rejects(f.delete({ dev: 'eth0', parent: 'ingress', prio: 1, handle: '1' }), (e: unknown) => e instanceof ValidationError && e.field === 'handle');
  await assert.rejects(f.list({ dev: 'eth0', parent: 'nowhere' }), (e: unknown) => e instanceof ValidationError && e.field === 'filter.parent');
  assert.equal(sent.length, 0);
  sock.close();
});

test('fuzz: truncated, mutated and random filter messages decode (and list) or throw CodecError only', () => {
  const seeds = [...fx.requests, ...fx.deletes, ...fx.dump.v0, ...fx.dump.v1].map(hex);
  const names = new Map<number, string>();
  const next = rng(0xf17e5);
  let cases = 0;
  const run = (b: Buffer): void => {
    cases++;
    try {
      toFilter(codec.decodeFilterMessage(b), names);
    } catch (err) {
      if (!(err instanceof codec.CodecError)) throw new Error(`${b.toString('hex')}: ${String(err)}`, { cause: err });
    }
  };
  for (const s of seeds) {
    for (let n = 0; n <= s.length; n++) run(s.subarray(0, n));
    for (let k = 0; k < 200; k++) {
      const b = Buffer.from(s);
      for (let j = 0; j <= next() % 4; j++) b[next() % b.length] = next() & 0xff;
      run(b);
    }
  }
  for (let k = 0; k < 500; k++) run(Buffer.from(Array.from({ length: next() % 200 }, () => next() & 0xff)));
  assert.ok(cases > 5000);
});
