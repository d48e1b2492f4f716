// Traffic control over rtnetlink (issue 15 §3), each test in a fresh namespace: qdiscs and classes
// made here are what tc shows (`tc -j qdisc show`, `tc -d class show`), those made by tc are what
// we list; change, replace and delete; ifb links; the kernel's refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rtnl, NetlinkError, type Qdisc } from '@vmhost/net';
import { freshNetns, ipJson, sh } from '../helpers/ns.js';
import { tcClassLines, tcRate, tcSize } from '../../test/helpers/tc-text.js';

interface TcQdisc { kind: string; handle: string; dev: string; root?: boolean; parent?: string; options: Record<string, unknown> }

async function tcQdiscs(ns: string, dev: string): Promise<TcQdisc[]> {
  return JSON.parse(await sh(ns, 'tc', ['-j', 'qdisc', 'show', 'dev', dev])) as TcQdisc[];
}

/** Our qdisc as tc -j prints it (the fields both have). */
function asTc(q: Qdisc): Record<string, unknown> {
  const out: Record<string, unknown> = { kind: q.kind, handle: q.handle, parent: q.parent };
  if (q.htb) out.options = { r2q: q.htb.r2q, default: q.htb.defaultClass === null ? '0' : `0x${q.htb.defaultClass.split(':')[1]}`, direct_qlen: q.htb.directQlen };
  if (q.tbf) out.options = { rate: q.tbf.rate / 8, burst: q.tbf.burst, lat: Math.trunc(q.tbf.latency * 1e6) };
  if (q.fifo) out.options = { limit: q.fifo.limit };
  return out;
}
function tcAsOurs(q: TcQdisc): Record<string, unknown> {
  const out: Record<string, unknown> = { kind: q.kind, handle: q.handle, parent: q.root ? 'root' : q.parent };
  const o = q.options;
  if (q.kind === 'htb') out.options = { r2q: o.r2q, default: o.default, direct_qlen: o.direct_qlen };
  if (q.kind === 'tbf') out.options = { rate: o.rate, burst: o.burst, lat: o.lat };
  if (q.kind === 'pfifo' || q.kind === 'bfifo') out.options = { limit: o.limit };
  return out;
}

async function setup(t: Parameters<typeof freshNetns>[0], tag: string): Promise<{ ns: string; h: Rtnl }> {
  const ns = await freshNetns(t, tag);
  const h = await Rtnl.open({ netns: ns });
  t.after(() => h.close());
  await h.links.add({ kind: 'veth', name: 'tap0', up: true, peer: { name: 'peer0' } });
  return { ns, h };
}

test('qdiscs and classes made here are what tc shows; change, replace and delete too', async (t) => {
  const { ns, h } = await setup(t, 'tc1');
  await h.qdiscs.add({ kind: 'htb', dev: 'tap0', handle: '1:', defaultClass: '1:20', r2q: 5 });
  await h.classes.add({ kind: 'htb', dev: 'tap0', parent: '1:', classid: '1:1', rate: '100mbit' });
  await h.classes.add({ kind: 'htb', dev: 'tap0', parent: '1:1', classid: '1:20', rate: '10mbit', ceil: '20mbit', burst: 15 * 1024, cburst: 3000, quantum: 1500, prio: 2 });
  await h.classes.add({ kind: 'htb', dev: 'tap0', parent: '1:1', classid: '1:30', rate: '40gbit' });
  await h.qdiscs.add({ kind: 'pfifo', dev: 'tap0', parent: '1:20', handle: '20:', limit: 50 });
  await h.qdiscs.add({ kind: 'bfifo', dev: 'tap0', parent: '1:30', limit: 30000 });
  await h.qdiscs.add({ kind: 'tbf', dev: 'peer0', rate: '5mbit', burst: 4096, latency: 0.05 });
  await h.qdiscs.add({ kind: 'ingress', dev: 'peer0' });

  for (const dev of ['tap0', 'peer0']) {
    const ours = (await h.qdiscs.list({ dev })).map(asTc);
    const theirs = (await tcQdiscs(ns, dev)).map(tcAsOurs);
    assert.deepEqual(ours, theirs, dev);
  }
  const classes = await h.classes.list({ dev: 'tap0' });
  const lines = tcClassLines(await sh(ns, 'tc', ['-d', 'class', 'show', 'dev', 'tap0']));
  assert.deepEqual(classes.map((c) => c.classid).sort(), lines.map((l) => l.classid).sort());
  for (const l of lines) {
    const c = classes.find((x) => x.classid === l.classid)!;
    assert.deepEqual([c.parent, c.leaf, c.htb!.rate, c.htb!.ceil, c.htb!.level], [l.parent, l.get('leaf') ?? null, tcRate(l.get('rate')!), tcRate(l.get('ceil')!), Number(l.get('level'))]);
    assert.ok(Math.abs(c.htb!.burst - tcSize(l.get('burst')!.split('/')[0]!)) < 16);
    if (l.get('quantum') !== undefined) assert.equal(c.htb!.quantum, Number(l.get('quantum')));
  }
  const c20 = classes.find((c) => c.classid === '1:20')!;
  assert.deepEqual(c20.htb, { rate: 10e6, ceil: 20e6, burst: 15360, cburst: 3000, quantum: 1500, prio: 2, level: 0 });
  assert.equal(c20.leaf, '20:');

  // change: the class keeps its place, its rate changes; replace of the root tbf.
  await h.classes.change({ kind: 'htb', dev: 'tap0', parent: '1:1', classid: '1:20', rate: '12mbit', ceil: '12mbit' });
  const after = tcClassLines(await sh(ns, 'tc', ['-d', 'class', 'show', 'dev', 'tap0'])).find((l) => l.classid === '1:20')!;
  assert.deepEqual([after.get('rate'), after.get('ceil'), after.get('leaf')], ['12Mbit', '12Mbit', '20:']);
  await h.qdiscs.replace({ kind: 'tbf', dev: 'peer0', rate: '1mbit', burst: 2000, limit: 10000, peakrate: '2mbit', mtu: 1600 });
  const tbf = (await tcQdiscs(ns, 'peer0')).find((q) => q.kind === 'tbf')!;
  assert.deepEqual([tbf.options.rate, tbf.options.burst, tbf.options.minburst], [125000, 2000, 1600]);
  const ourTbf = (await h.qdiscs.list({ dev: 'peer0', kind: 'tbf' }))[0]!;
  assert.deepEqual([ourTbf.tbf!.peakrate, ourTbf.tbf!.mtu, ourTbf.tbf!.limit], [2e6, 1600, 10000]);

  // delete: a class, the ingress qdisc, the root (back to the default qdisc).
  await h.qdiscs.delete({ dev: 'tap0', parent: '1:30' });
  await h.classes.delete({ dev: 'tap0', classid: '1:30' });
  assert.deepEqual(tcClassLines(await sh(ns, 'tc', ['class', 'show', 'dev', 'tap0'])).map((l) => l.classid).sort(), ['1:1', '1:20']);
  await h.qdiscs.delete({ dev: 'peer0', parent: 'ingress' });
  await h.qdiscs.delete({ dev: 'tap0' });
  assert.deepEqual((await tcQdiscs(ns, 'tap0')).map((q) => q.kind), ['noqueue']);
  assert.deepEqual((await tcQdiscs(ns, 'peer0')).map((q) => q.kind), ['tbf']);
});

test('qdiscs and classes made by tc are what we list', async (t) => {
  const { ns, h } = await setup(t, 'tc2');
  await sh(ns, 'tc', ['qdisc', 'add', 'dev', 'tap0', 'root', 'handle', '7:', 'htb', 'default', '1a', 'direct_qlen', '77']);
  await sh(ns, 'tc', ['class', 'add', 'dev', 'tap0', 'parent', '7:', 'classid', '7:1a', 'htb', 'rate', '64kbit', 'ceil', '1mbit', 'prio', '5']);
  await sh(ns, 'tc', ['qdisc', 'add', 'dev', 'peer0', 'root', 'tbf', 'rate', '50gbit', 'burst', '100000', 'latency', '10ms']);
  const [htb] = await h.qdiscs.list({ dev: 'tap0' });
  assert.deepEqual([htb!.kind, htb!.handle, htb!.parent, htb!.htb!.defaultClass, htb!.htb!.directQlen, htb!.htb!.r2q], ['htb', '7:', 'root', '7:1a', 77, 10]);
  const [cls] = await h.classes.list({ dev: 'tap0' });
  assert.deepEqual([cls!.classid, cls!.parent, cls!.htb!.rate, cls!.htb!.ceil, cls!.htb!.prio], ['7:1a', 'root', 64000, 1e6, 5]);
  const [tbf] = await h.qdiscs.list({ dev: 'peer0' });
  const theirs = (await tcQdiscs(ns, 'peer0'))[0]!.options;
  assert.deepEqual([tbf!.tbf!.rate, tbf!.tbf!.burst, Math.trunc(tbf!.tbf!.latency * 1e6)], [50e9, theirs.burst, theirs.lat]);
  assert.ok(tbf!.handle.endsWith(':') && tbf!.stats !== null);
});

test('ifb links, and the kernel\'s refusals with errno names and extack', async (t) => {
  const { ns, h } = await setup(t, 'tc3');
  const ifb = await h.links.add({ kind: 'ifb', name: 'ifb0', up: true });
  assert.equal(ifb.kind, 'ifb');
  const [oracle] = await ipJson<Array<{ linkinfo?: { info_kind?: string } }>>(ns, ['-d', 'link', 'show', 'ifb0']);
  assert.equal(oracle?.linkinfo?.info_kind, 'ifb');
  await h.qdiscs.add({ kind: 'tbf', dev: 'ifb0', rate: '50mbit', burst: 64 * 1024, latency: 0.05 });
  assert.deepEqual((await tcQdiscs(ns, 'ifb0')).map((q) => q.kind), ['tbf']);

  await h.qdiscs.add({ kind: 'htb', dev: 'tap0', handle: '1:' });
  const exists = await h.qdiscs.add({ kind: 'htb', dev: 'tap0', handle: '1:' }).then(() => undefined, (e: unknown) => e);
  assert.ok(exists instanceof NetlinkError && exists.code === 'EEXIST', String(exists));
  assert.match(exists.message, /^qdiscs\.add htb tap0 root: EEXIST \(File exists\)/);
  const noParent = await h.classes.add({ kind: 'htb', dev: 'tap0', parent: '1:9', classid: '1:10', rate: '1mbit' }).then(() => undefined, (e: unknown) => e);
  assert.ok(noParent instanceof NetlinkError && noParent.code === 'ENOENT' && /no parent class 1:9/.test(noParent.message), String(noParent));
  assert.deepEqual(await h.classes.list({ dev: 'tap0' }), []); // nothing was made
  await assert.rejects(h.classes.change({ kind: 'htb', dev: 'tap0', parent: '1:', classid: '1:5', rate: '1mbit' }), (e: unknown) => e instanceof NetlinkError && e.code === 'ENOENT');
  await h.qdiscs.delete({ dev: 'tap0' });
  const dflt = await h.qdiscs.delete({ dev: 'tap0' }).then(() => undefined, (e: unknown) => e);
  assert.ok(dflt instanceof NetlinkError && dflt.code === 'ENOENT' && dflt.extack !== undefined, String(dflt));
  await assert.rejects(h.qdiscs.add({ kind: 'htb', dev: 'nosuch0' }), (e: unknown) => e instanceof NetlinkError && e.code === 'ENODEV');
});
