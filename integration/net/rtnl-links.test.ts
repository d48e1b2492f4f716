// Links through @vmhost/net, each test in a fresh namespace, checked against `ip -j` as the oracle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rtnl, NetlinkError, ValidationError, type Link } from '@vmhost/net';
import { freshNetns, ipJson } from '../helpers/ns.js';

interface IpLink {
  ifindex: number;
  ifname: string;
  address?: string;
  mtu: number;
  flags: string[];
  master?: string;
  link?: string;
  link_index?: number;
  operstate: string;
  ifalias?: string;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown>; info_slave_kind?: string };
}

async function ipLink(ns: string, name: string): Promise<IpLink> {
  const [l] = await ipJson<IpLink[]>(ns, ['-d', 'link', 'show', 'dev', name]);
  assert.ok(l, `ip sees ${name}`);
  return l;
}

async function open(t: import('node:test').TestContext, tag: string): Promise<{ ns: string; h: Rtnl }> {
  const ns = await freshNetns(t, tag);
  const h = await Rtnl.open({ netns: ns });
  t.after(() => h.close());
  return { ns, h };
}

test('veth pair: add with mac, promisc and up; get/list agree with ip -j', async (t) => {
  const { ns, h } = await open(t, 'veth');
  const added = await h.links.add({ kind: 'veth', name: 'veth0', mac: 'de:ad:be:ef:24:31', promisc: true, up: true, mtu: 1400, peer: { name: 'veth1', mac: '02:00:00:00:00:02' } });
  assert.equal(added.name, 'veth0');
  assert.equal(added.kind, 'veth');
  const ip0 = await ipLink(ns, 'veth0');
  const ip1 = await ipLink(ns, 'veth1');
  assert.equal(ip0.address, 'de:ad:be:ef:24:31');
  assert.equal(ip1.address, '02:00:00:00:00:02');
  assert.equal(ip0.mtu, 1400);
  assert.ok(ip0.flags.includes('UP') && ip0.flags.includes('PROMISC'));
  assert.equal(ip0.linkinfo?.info_kind, 'veth');
  const got = await h.links.get('veth0');
  assert.equal(got.index, ip0.ifindex);
  assert.deepEqual([got.mac, got.mtu, got.flags.up, got.flags.promisc], ['de:ad:be:ef:24:31', 1400, true, true]);
  assert.equal(got.veth?.peerIndex, ip1.ifindex);
  assert.equal(added.index, got.index);
  const byIndex = await h.links.get(ip1.ifindex);
  assert.equal(byIndex.name, 'veth1');
  const all = await h.links.list();
  const ipAll = await ipJson<IpLink[]>(ns, ['link', 'show']);
  assert.deepEqual(all.map((l) => [l.index, l.name, l.mtu, l.mac]), ipAll.map((l) => [l.ifindex, l.ifname, l.mtu, l.address ?? null]));
  assert.deepEqual((await h.links.list({ kind: 'veth' })).map((l) => l.name).sort(), ['veth0', 'veth1']);
  await h.links.delete('veth0');
  assert.deepEqual((await ipJson<IpLink[]>(ns, ['link', 'show'])).map((l) => l.ifname), ['lo']);
  assert.equal(await h.links.find('veth1'), undefined);
  await assert.rejects(h.links.get('veth0'), (e: unknown) => e instanceof NetlinkError && e.code === 'ENODEV');
});

test('bridge with the seed settings; set enslaves, renames, changes mtu/alias/mac and releases', async (t) => {
  const { ns, h } = await open(t, 'bridge');
  const br = await h.links.add({ kind: 'bridge', name: 'br0', mac: 'de:ad:be:ef:24:31', stp: false, forwardDelay: 4 });
  assert.deepEqual([br.bridge?.stp, br.bridge?.forwardDelay], [false, 4]);
  let ipBr = await ipLink(ns, 'br0');
  assert.equal(ipBr.linkinfo?.info_kind, 'bridge');
  assert.equal(ipBr.linkinfo?.info_data?.stp_state, 0);
  assert.equal(ipBr.linkinfo?.info_data?.forward_delay, 400); // centiseconds in the kernel
  assert.equal(ipBr.address, 'de:ad:be:ef:24:31');
  const stp = await h.links.add({ kind: 'bridge', name: 'br1', stp: true, forwardDelay: 15 });
  assert.equal(stp.bridge?.stp, true);
  assert.equal((await ipLink(ns, 'br1')).linkinfo?.info_data?.stp_state, 1);

  await h.links.add({ kind: 'veth', name: 'veth0', peer: { name: 'veth1' } });
  await h.links.set('veth0', { master: 'br0', up: true, promisc: true, mtu: 1450, alias: 'uplink', mac: '02:00:00:00:00:10' });
  const ip0 = await ipLink(ns, 'veth0');
  assert.equal(ip0.master, 'br0');
  assert.equal(ip0.mtu, 1450);
  assert.equal(ip0.ifalias, 'uplink');
  assert.equal(ip0.address, '02:00:00:00:00:10');
  assert.equal(ip0.linkinfo?.info_slave_kind, 'bridge');
  const l0 = await h.links.get('veth0');
  assert.deepEqual([l0.master, l0.masterIndex, l0.alias, l0.flags.promisc], ['br0', ipBr.ifindex, 'uplink', true]);
  assert.ok(l0.bridgePort);
  assert.deepEqual((await h.links.list({ master: 'br0' })).map((l) => l.name), ['veth0']);
  await h.links.set('br0', { up: true });
  ipBr = await ipLink(ns, 'br0');
  assert.ok(ipBr.flags.includes('UP'));
  // Rename needs the link down: do both in one call (the kernel renames before changing flags).
  await h.links.set('veth1', { name: 'peer1', up: true });
  assert.ok((await ipLink(ns, 'peer1')).flags.includes('UP'));
  await h.links.set('veth0', { master: null, alias: null });
  const released = await ipLink(ns, 'veth0');
  assert.equal(released.master, undefined);
  assert.equal(released.ifalias, undefined);
});

test('links.set rolls back what the kernel applied when a later part fails', async (t) => {
  const { ns, h } = await open(t, 'rollback');
  await h.links.add({ kind: 'veth', name: 'veth0', mtu: 1500, peer: { name: 'veth1' } });
  await h.links.set('veth0', { up: true });
  // The kernel sets the MAC, MTU and alias, then refuses veth1 as a master (not a master device):
  // what it had applied goes back.
  await assert.rejects(h.links.set('veth0', { mtu: 1300, mac: '02:00:00:00:00:33', alias: 'x', master: 'veth1' }), (e: unknown) => e instanceof NetlinkError && e.code === 'EOPNOTSUPP');
  const l = await ipLink(ns, 'veth0');
  assert.equal(l.mtu, 1500);
  assert.notEqual(l.address, '02:00:00:00:00:33');
  assert.equal(l.ifalias, undefined);
  assert.ok(l.flags.includes('UP'));
});

test('TAP: persistent, by ioctl in the handle namespace, with mac, master and up; rollback on failure', async (t) => {
  const { ns, h } = await open(t, 'tap');
  await h.links.add({ kind: 'bridge', name: 'br0' });
  const tap = await h.links.add({ kind: 'tap', name: 'tap0', mac: '52:54:00:12:34:56', master: 'br0', up: true, vnetHdr: true });
  assert.equal(tap.kind, 'tun');
  assert.deepEqual([tap.tun?.mode, tap.tun?.persist, tap.tun?.vnetHdr, tap.master], ['tap', true, true, 'br0']);
  const ipTap = await ipLink(ns, 'tap0');
  assert.equal(ipTap.address, '52:54:00:12:34:56');
  assert.equal(ipTap.master, 'br0');
  assert.equal(ipTap.linkinfo?.info_kind, 'tun');
  assert.equal(ipTap.linkinfo?.info_data?.type, 'tap');
  assert.deepEqual((await h.links.list({ kind: 'tap' })).map((l) => l.name), ['tap0']);
  // A later step fails (MTU too big for a TAP is fine, so use an MTU the bridge port refuses? use a bad master kind):
  await h.links.add({ kind: 'veth', name: 'v0', peer: { name: 'v1' } });
  await assert.rejects(h.links.add({ kind: 'tap', name: 'tap1', master: 'v0' }), NetlinkError);
  assert.equal(await h.links.find('tap1'), undefined, 'the TAP is removed again');
  await assert.rejects(h.links.add({ kind: 'tap', name: 'tap0' }), (e: unknown) => e instanceof NetlinkError && e.code === 'EEXIST');
  await h.links.delete('tap0');
  assert.equal(await h.links.find('tap0'), undefined);
});

test('macvlan and vxlan carry their kind data; vlan is refused by this kernel with its extack', async (t) => {
  const { ns, h } = await open(t, 'kinds');
  await h.links.add({ kind: 'veth', name: 'veth0', peer: { name: 'veth1' } });
  const mv = await h.links.add({ kind: 'macvlan', name: 'mv0', link: 'veth0', mode: 'private' });
  assert.equal(mv.macvlan?.mode, 'private');
  const ipMv = await ipLink(ns, 'mv0');
  assert.equal(ipMv.linkinfo?.info_data?.mode, 'private');
  assert.equal(ipMv.link, 'veth0');
  const vx = await h.links.add({ kind: 'vxlan', name: 'vx0', vni: 4242, remote: '198.51.100.2', local: '198.51.100.1', port: 4789, ttl: 16 });
  assert.deepEqual([vx.vxlan?.vni, vx.vxlan?.remote, vx.vxlan?.local, vx.vxlan?.port, vx.vxlan?.ttl], [4242, '198.51.100.2', '198.51.100.1', 4789, 16]);
  const d = (await ipLink(ns, 'vx0')).linkinfo?.info_data ?? {};
  assert.deepEqual([d.id, d.remote, d.local, d.port, d.ttl], [4242, '198.51.100.2', '198.51.100.1', 4789, 16]);
  // This machine's kernel has no 8021q module: the request is well-formed, the kernel says so.
  await assert.rejects(h.links.add({ kind: 'vlan', name: 'veth0.42', link: 'veth0', id: 42 }), (e: unknown) => {
    assert.ok(e instanceof NetlinkError);
    assert.equal(e.code, 'EOPNOTSUPP');
    assert.equal(e.extack, 'Unknown device type');
    return true;
  });
});

test('kernel errors carry errno, code, op and the extack text', async (t) => {
  const { h } = await open(t, 'errors');
  await assert.rejects(h.links.add({ kind: 'nosuchkind', name: 'x0' }), (e: unknown) => {
    assert.ok(e instanceof NetlinkError);
    assert.equal(e.code, 'EOPNOTSUPP');
    assert.equal(e.extack, 'Unknown device type');
    assert.match(e.op, /links\.add x0/);
    assert.match(e.message, /Unknown device type/);
    return true;
  });
  await h.links.add({ kind: 'bridge', name: 'br0' });
  await assert.rejects(h.links.add({ kind: 'bridge', name: 'br0' }), (e: unknown) => e instanceof NetlinkError && e.code === 'EEXIST' && e.errno === 17);
  await assert.rejects(h.links.delete('nosuch0'), (e: unknown) => e instanceof NetlinkError && e.code === 'ENODEV');
  await assert.rejects(h.links.set('br0', { mtu: 65535 * 0 + 68, master: 'nosuch0' }), (e: unknown) => e instanceof NetlinkError && e.code === 'ENODEV');
});

test('validation names the field and sends nothing', async (t) => {
  const { ns, h } = await open(t, 'validate');
  const bad: Array<[() => Promise<unknown>, string]> = [
    [() => h.links.add({ kind: 'veth', name: 'x'.repeat(16), peer: { name: 'p' } }), 'name'],
    [() => h.links.add({ kind: 'veth', name: 'a', peer: { name: 'b/c' } }), 'peer.name'],
    [() => h.links.add({ kind: 'veth', name: 'a', mac: '01:00:5e:00:00:01', peer: { name: 'b' } }), 'mac'],
    [() => h.links.add({ kind: 'veth', name: 'a', mtu: 10, peer: { name: 'b' } }), 'mtu'],
    [() => h.links.add({ kind: 'vlan', name: 'v', link: 'a', id: 4095 }), 'id'],
    [() => h.links.add({ kind: 'vxlan', name: 'v', vni: 1 << 24 }), 'vni'],
    [() => h.links.add({ kind: 'vxlan', name: 'v', vni: 1, group: '198.51.100.1', dev: 'a' }), 'group'],
    [() => h.links.add({ kind: 'bridge', name: 'b', forwardDelay: 31 }), 'forwardDelay'],
    [() => h.links.add({ kind: 'veth', name: 'a', peer: { name: 'b', netns: 'bad/name' } }), 'peer.netns'],
    [() => h.links.add({ kind: 'bridge', name: 'b', netns: 'bad/name' }), 'netns'],
    [() => h.links.add({ kind: 'tap', name: 't', netns: ns }), 'netns'],
    [() => h.links.add({ kind: 'veth', name: 'a', peer: { name: 'b' }, master: 'br0', netns: ns }), 'master'],
    [() => h.links.add({ kind: 'Bad Kind', name: 'a' }), 'kind'],
    [() => h.links.set('a', { mtu: 70000 }), 'mtu'],
    [() => h.links.set('a', { netns: '' }), 'netns'],
    [() => h.links.set('a', { colour: 'red' } as never), 'colour'],
  ];
  for (const [fn, field] of bad) {
    await assert.rejects(fn(), (e: unknown) => e instanceof ValidationError && e.field === field, `field ${field}`);
  }
  assert.deepEqual((await ipJson<IpLink[]>(ns, ['link', 'show'])).map((l) => l.ifname), ['lo']);
});

test('64 link adds in flight on one handle, then a concurrent dump while deleting', async (t) => {
  const { ns, h } = await open(t, 'concurrent');
  const names = Array.from({ length: 64 }, (_, i) => `b${i}`);
  const links: Link[] = await Promise.all(names.map((name) => h.links.add({ kind: 'bridge', name })));
  assert.deepEqual(links.map((l) => l.name), names);
  const ipNames = (await ipJson<IpLink[]>(ns, ['link', 'show'])).map((l) => l.ifname).filter((n) => n !== 'lo').sort();
  assert.deepEqual(ipNames, [...names].sort());
  const [dumped] = await Promise.all([h.links.list({ kind: 'bridge' }), ...names.slice(0, 32).map((n) => h.links.delete(n))]);
  assert.ok(dumped.length >= 32 && dumped.length <= 64);
  assert.equal((await h.links.list({ kind: 'bridge' })).length, 32);
});

test('moving links between namespaces; veth peer created in another namespace; handles side by side', async (t) => {
  const { ns: a, h: ha } = await open(t, 'mvA');
  const { ns: b, h: hb } = await open(t, 'mvB');
  await ha.links.add({ kind: 'veth', name: 'va', peer: { name: 'vb', netns: b } });
  assert.deepEqual((await ipJson<IpLink[]>(a, ['link', 'show'])).map((l) => l.ifname).sort(), ['lo', 'va']);
  assert.deepEqual((await ipJson<IpLink[]>(b, ['link', 'show'])).map((l) => l.ifname).sort(), ['lo', 'vb']);
  const va = await ha.links.get('va');
  const vb = await hb.links.get('vb');
  assert.equal(va.veth?.peerIndex, vb.index);
  assert.notEqual(va.veth?.peerNetnsId, null, 'the peer lives in another namespace');
  await ha.links.add({ kind: 'veth', name: 'vm0', peer: { name: 'vm1' } });
  await ha.links.set('vm0', { netns: b, mtu: 1400 });
  assert.equal(await ha.links.find('vm0'), undefined);
  const moved = await ipLink(b, 'vm0');
  assert.equal(moved.mtu, 1400);
  assert.equal((await hb.links.get('vm0')).kind, 'veth');
  // a { path } works as a target too: here the other handle's own namespace
  await hb.links.set('vm0', { netns: { path: ha.netnsPath } });
  assert.equal((await ipLink(a, 'vm0')).ifname, 'vm0');
  // A bridge may not leave its namespace: the kernel says why, and the other changes are undone.
  await ha.links.add({ kind: 'bridge', name: 'brm' });
  await assert.rejects(ha.links.set('brm', { mtu: 1400, netns: b }), (e: unknown) => e instanceof NetlinkError && e.code === 'EINVAL' && /immutable/.test(e.extack ?? ''));
  assert.equal((await ipLink(a, 'brm')).mtu, 1500);
});

test('links.add with { result: false }: created without the echo, nothing returned; errors still typed', async (t) => {
  const ns = await freshNetns(t, 'noecho');
  const h = await Rtnl.open({ netns: ns });
  t.after(() => h.close());
  assert.equal(await h.links.add({ kind: 'bridge', name: 'br9', stp: false }, { result: false }), undefined);
  assert.equal(await h.links.add({ kind: 'veth', name: 'v9', peer: { name: 'p9' }, master: 'br9' }, { result: false }), undefined);
  const [br] = await ipJson<Array<{ ifname: string; linkinfo: { info_kind: string } }>>(ns, ['-d', 'link', 'show', 'br9']);
  assert.equal(br?.linkinfo.info_kind, 'bridge');
  const [v] = await ipJson<Array<{ ifname: string; master?: string }>>(ns, ['link', 'show', 'v9']);
  assert.equal(v?.master, 'br9');
  await assert.rejects(h.links.add({ kind: 'bridge', name: 'br9' }, { result: false }), (e: unknown) => e instanceof NetlinkError && e.code === 'EEXIST');
  await assert.rejects(h.links.add({ kind: 'bridge', name: 'br9' }, null as unknown as { result: false }), (e: unknown) => e instanceof ValidationError && e.field === 'options');
});

test('links.add with netns: made directly in another namespace (bridge, veth whose peer stays, macvlan on a parent here), up there', async (t) => {
  const { ns: a, h: ha } = await open(t, 'addA');
  const { ns: b, h: hb } = await open(t, 'addB');
  // a bridge made from a's handle lives in b, up, with the given MAC; the Link is read in b
  const br = await ha.links.add({ kind: 'bridge', name: 'brx', mac: '02:00:00:00:00:01', up: true, netns: b });
  assert.equal(br.name, 'brx');
  assert.equal(br.kind, 'bridge');
  const ipBr = await ipLink(b, 'brx');
  assert.equal(ipBr.ifindex, br.index);
  assert.equal(ipBr.address, '02:00:00:00:00:01');
  assert.ok(ipBr.flags.includes('UP'));
  assert.equal(await ha.links.find('brx'), undefined, 'not in the handle\'s namespace');
  // a veth in b whose peer (same name allowed: other namespace) stays in a
  await ha.links.add({ kind: 'veth', name: 'v0', peer: { name: 'v0' }, netns: b }, { result: false });
  assert.equal((await ipLink(a, 'v0')).ifname, 'v0');
  assert.equal((await hb.links.get('v0')).veth?.peerIndex, (await ha.links.get('v0')).index);
  // macvlan on a parent in a, created in b (the container use case)
  await ha.links.add({ kind: 'bridge', name: 'up0', up: true });
  const mv = await ha.links.add({ kind: 'macvlan', name: 'mv0', link: 'up0', mode: 'bridge', netns: b });
  assert.equal(mv.kind, 'macvlan');
  assert.equal((await ipLink(b, 'mv0')).linkinfo?.info_kind, 'macvlan');
  // errors are the kernel's: the name is taken there
  await assert.rejects(ha.links.add({ kind: 'bridge', name: 'brx', netns: b }), (e: unknown) => e instanceof NetlinkError && e.code === 'EEXIST');
  assert.deepEqual((await ipJson<IpLink[]>(a, ['link', 'show'])).map((l) => l.ifname).sort(), ['lo', 'up0', 'v0']);
});

test('link groups: set and read (ip -j agrees), rolled back with the rest; deleteGroup deletes exactly the group in one request', async (t) => {
  const { ns, h } = await open(t, 'group');
  for (let i = 0; i < 5; i++) await h.links.add({ kind: 'tap', name: `tg${i}` });
  await h.links.add({ kind: 'veth', name: 'other0', peer: { name: 'other1' } });
  for (const i of [0, 1, 2]) await h.links.set(`tg${i}`, { group: 4242 });
  await h.links.set('other0', { group: 7 });
  const groupOf = async (name: string): Promise<unknown> => ((await ipJson<Array<{ group: string }>>(ns, ['-d', 'link', 'show', 'dev', name]))[0] as { group: string }).group;
  assert.equal(await groupOf('tg0'), '4242');
  assert.equal(await groupOf('tg3'), 'default');
  assert.equal((await h.links.get('tg1')).group, 4242);
  assert.equal((await h.links.get('tg4')).group, 0);
  // lists decode a lean view of each link: the group is in it
  assert.deepEqual((await h.links.list()).filter((l) => l.name.startsWith('tg')).map((l) => [l.name, l.group]), [['tg0', 4242], ['tg1', 4242], ['tg2', 4242], ['tg3', 0], ['tg4', 0]]);
  // the kernel sets the group, then refuses other1 as a master: the group goes back too
  await assert.rejects(h.links.set('tg3', { group: 99, master: 'other1' }), (e: unknown) => e instanceof NetlinkError && e.code === 'EOPNOTSUPP');
  assert.equal(await groupOf('tg3'), 'default');
  assert.equal((await h.links.get('tg3')).group, 0);
  await h.links.deleteGroup(4242);
  assert.deepEqual((await ipJson<Array<{ ifname: string }>>(ns, ['link', 'show'])).map((l) => l.ifname).sort(), ['lo', 'other0', 'other1', 'tg3', 'tg4']);
  await assert.rejects(h.links.deleteGroup(4242), (e: unknown) => e instanceof NetlinkError && e.code === 'ENODEV');
  for (const bad of [0, -1, 2 ** 32, 1.5, '7']) {
    await assert.rejects(h.links.deleteGroup(bad as number), (e: unknown) => e instanceof ValidationError && e.field === 'group');
  }
  await assert.rejects(h.links.set('tg3', { group: -1 }), (e: unknown) => e instanceof ValidationError && e.field === 'group');
});
