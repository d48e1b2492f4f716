// Traffic-control filters over rtnetlink (issue 15 §3), each test in a fresh namespace: u32 filters
// with mirred actions made here are what `tc -j filter show` prints, those made by tc are what we
// list; replace and delete (the whole instance by prio, one node by handle); the kernel's
// refusals; and a redirect from a link's ingress to an ifb carries the traffic (the ifb's qdisc
// counts it, `tc -s -j qdisc show`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rtnl, NetlinkError, type TcFilter } from '@vmhost/net';
import { freshNetns, sh } from '../helpers/ns.js';

interface TcJsonFilter { protocol: string; pref: number; kind: string; chain: number; options?: { fh?: string; ht_divisor?: number; key_ht?: string; flowid?: string; match?: { value: string; mask: string; off: number }; actions?: Array<{ order: number; kind: string; mirred_action: string; direction: string; to_dev: string }> } }

async function tcFilters(ns: string, dev: string, parent: string): Promise<TcJsonFilter[]> {
  return JSON.parse(await sh(ns, 'tc', ['-j', 'filter', 'show', 'dev', dev, 'parent', parent])) as TcJsonFilter[];
}

/** Our filter as tc -j prints it (the fields both have). */
function asTc(f: TcFilter): Record<string, unknown> {
  const out: Record<string, unknown> = { protocol: f.protocol, pref: f.prio, kind: f.kind, chain: f.chain };
  if (f.u32) {
    const o: Record<string, unknown> = { fh: f.handle };
    if (f.u32.divisor !== null) o.ht_divisor = f.u32.divisor;
    if (f.u32.hashTable !== null) o.key_ht = f.u32.hashTable;
    if (f.u32.classid !== null) o.flowid = f.u32.classid;
    const k = f.u32.match[f.u32.match.length - 1];
    if (k) o.match = { value: k.value.toString(16), mask: k.mask.toString(16), off: k.offset };
    if (f.u32.actions.length > 0) o.actions = f.u32.actions.map((a) => ({ order: a.order, kind: a.kind, mirred_action: a.mirred?.action, direction: a.mirred?.direction, to_dev: a.mirred?.dev }));
    out.options = o;
  }
  return out;
}
function tcAsOurs(f: TcJsonFilter): Record<string, unknown> {
  const out: Record<string, unknown> = { protocol: f.protocol, pref: f.pref, kind: f.kind, chain: f.chain };
  const o = f.options;
  if (o) {
    const x: Record<string, unknown> = { fh: o.fh };
    for (const k of ['ht_divisor', 'key_ht', 'flowid'] as const) if (o[k] !== undefined) x[k] = o[k];
    if (o.match) x.match = { value: o.match.value, mask: o.match.mask, off: o.match.off };
    if (o.actions) x.actions = o.actions.map((a) => ({ order: a.order, kind: a.kind, mirred_action: a.mirred_action, direction: a.direction, to_dev: a.to_dev }));
    out.options = x;
  }
  return out;
}

async function setup(t: Parameters<typeof freshNetns>[0], tag: string): Promise<{ ns: string; h: Rtnl }> {
  const ns = await freshNetns(t, tag);
  const h = await Rtnl.open({ netns: ns });
  t.after(() => h.close());
  await h.links.add({ kind: 'veth', name: 'tap0', up: true, peer: { name: 'peer0' } });
  await h.links.set('peer0', { up: true });
  for (const n of ['ifb0', 'ifb1']) await h.links.add({ kind: 'ifb', name: n, up: true });
  await h.qdiscs.add({ kind: 'ingress', dev: 'tap0' });
  await h.qdiscs.add({ kind: 'htb', dev: 'peer0', handle: '1:' });
  return { ns, h };
}

test('u32 filters with mirred actions made here are what tc shows; replace; delete by prio and by handle', async (t) => {
  const { ns, h } = await setup(t, 'tcf1');
  await h.filters.add({ kind: 'u32', dev: 'tap0', parent: 'ingress', prio: 1, actions: [{ kind: 'mirred', action: 'redirect', dev: 'ifb0' }] });
  await h.filters.add({ kind: 'u32', dev: 'tap0', parent: 'ingress', protocol: 'ip', prio: 2, match: [{ value: 0xc0a80000, mask: 0xffff0000, offset: 16 }], actions: [{ kind: 'mirred', action: 'mirror', dev: 'ifb1' }] });
  await h.filters.add({ kind: 'u32', dev: 'peer0', parent: '1:', protocol: 'ipv6', prio: 5, match: [{ value: 0x11, mask: 0xff, offset: 4 }], classid: '1:10' });
  for (const [dev, parent] of [['tap0', 'ffff:'], ['peer0', '1:']] as const) {
    const ours = await h.filters.list({ dev, parent: parent === 'ffff:' ? 'ingress' : parent });
    assert.deepEqual(ours.map(asTc), (await tcFilters(ns, dev, parent)).map(tcAsOurs), dev);
    assert.ok(ours.every((f) => f.dev === dev && f.parent === parent));
  }
  const node = (await h.filters.list({ dev: 'tap0', parent: 'ingress' })).find((f) => f.prio === 1 && f.u32?.actions.length)!;
  assert.equal(node.handle, '800::800');
  assert.deepEqual(node.u32!.match, [{ value: 0, mask: 0, offset: 0 }]);

  // replace the node: the redirect now goes to ifb1
  await h.filters.replace({ kind: 'u32', dev: 'tap0', parent: 'ingress', prio: 1, handle: node.handle!, actions: [{ kind: 'mirred', action: 'redirect', dev: 'ifb1' }] });
  const replaced = (await tcFilters(ns, 'tap0', 'ffff:')).filter((f) => f.pref === 1 && f.options?.actions);
  assert.deepEqual(replaced.map((f) => f.options!.actions![0]!.to_dev), ['ifb1']);

  // one node by handle: the instance and its table stay (as with tc)
  const prio2 = (await h.filters.list({ dev: 'tap0', parent: 'ingress' })).find((f) => f.prio === 2 && f.u32?.hashTable)!;
  await h.filters.delete({ dev: 'tap0', parent: 'ingress', prio: 2, protocol: 'ip', handle: prio2.handle! });
  assert.deepEqual((await tcFilters(ns, 'tap0', 'ffff:')).filter((f) => f.pref === 2).map((f) => f.options?.fh ?? null), [null, prio2.handle!.split(':')[0] + ':']);
  // by prio: all of it
  await h.filters.delete({ dev: 'tap0', parent: 'ingress', prio: 2 });
  await h.filters.delete({ dev: 'tap0', parent: 'ingress', prio: 1 });
  assert.deepEqual(await tcFilters(ns, 'tap0', 'ffff:'), []);
  assert.deepEqual(await h.filters.list({ dev: 'tap0', parent: 'ingress' }), []);
});

test('filters made by tc are what we list', async (t) => {
  const { ns, h } = await setup(t, 'tcf2');
  await sh(ns, 'tc', ['filter', 'add', 'dev', 'tap0', 'parent', 'ffff:', 'protocol', 'all', 'prio', '7', 'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', 'ifb1']);
  await sh(ns, 'tc', ['filter', 'add', 'dev', 'peer0', 'parent', '1:', 'protocol', 'ip', 'prio', '3', 'u32', 'match', 'u32', '0x0a000000', '0xff000000', 'at', '12', 'flowid', '1:20']);
  for (const [dev, parent] of [['tap0', 'ffff:'], ['peer0', '1:']] as const) {
    assert.deepEqual((await h.filters.list({ dev, parent })).map(asTc), (await tcFilters(ns, dev, parent)).map(tcAsOurs), dev);
  }
});

test('the kernel\'s refusals: a missing qdisc, a taken prio and handle, a missing filter, a missing redirect target', async (t) => {
  const { h } = await setup(t, 'tcf3');
  const spec = { kind: 'u32' as const, dev: 'tap0', parent: 'ingress', prio: 1, handle: '800::800', actions: [{ kind: 'mirred' as const, action: 'redirect' as const, dev: 'ifb0' }] };
  await assert.rejects(h.filters.add({ ...spec, dev: 'peer0', parent: '2:' }), (e: unknown) => e instanceof NetlinkError && /filters\.add u32 peer0 2: prio 1/.test(e.message), 'no qdisc 2:');
  await h.filters.add(spec);
  await assert.rejects(h.filters.add(spec), (e: unknown) => e instanceof NetlinkError && e.code === 'EEXIST');
  await assert.rejects(h.filters.delete({ dev: 'tap0', parent: 'ingress', prio: 9 }), (e: unknown) => e instanceof NetlinkError && e.code === 'ENOENT');
  await assert.rejects(h.filters.add({ ...spec, prio: 2, handle: undefined, actions: [{ kind: 'mirred', action: 'redirect', dev: 'nosuch0' }] } as never), (e: unknown) => e instanceof NetlinkError && e.code === 'ENODEV');
  assert.equal((await h.filters.list({ dev: 'tap0', parent: 'ingress' })).filter((f) => f.prio === 2).length, 0);
});

test('a redirect from a link\'s ingress to an ifb: what the link receives passes the ifb\'s qdisc', async (t) => {
  const { ns, h } = await setup(t, 'tcf4');
  await h.qdiscs.add({ kind: 'tbf', dev: 'ifb0', handle: '5:', rate: '100mbit', burst: 64 * 1024, latency: 0.05 });
  await h.filters.add({ kind: 'u32', dev: 'tap0', parent: 'ingress', prio: 1, actions: [{ kind: 'mirred', action: 'redirect', dev: 'ifb0' }] });
  const sent = async (): Promise<number> => ((await h.qdiscs.list({ dev: 'ifb0', kind: 'tbf' }))[0]?.stats?.packets ?? 0);
  const before = await sent();
  // 20 frames sent into peer0 arrive on tap0
  await sh(ns, 'python3', ['-c', [
    'import socket',
    's = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)',
    's.bind(("peer0", 0))',
    'dst = bytes.fromhex("ffffffffffff")',
    'for i in range(20): s.send(dst + bytes.fromhex("020000000002") + b"\\x08\\x00" + bytes(46))',
  ].join('\n')]);
  const tcCount = JSON.parse(await sh(ns, 'tc', ['-s', '-j', 'qdisc', 'show', 'dev', 'ifb0'])) as Array<{ kind: string; packets: number }>;
  const after = await sent();
  assert.ok(after - before >= 20, `the ifb's tbf counted ${after - before} packets`);
  assert.equal(tcCount.find((q) => q.kind === 'tbf')!.packets, after);
});
