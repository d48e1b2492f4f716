// Addresses, routes, neighbours (proxy entries included) and sysctls through @vmhost/net, each
// test in a fresh namespace, checked against `ip -j` and /proc inside the namespace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Rtnl, NetlinkError, NetlinkSocket, ValidationError, SystemError, Sysctl, netlink, netns } from '@vmhost/net';
import { freshNetns, ipJson, sh } from '../helpers/ns.js';

async function open(t: import('node:test').TestContext, tag: string): Promise<{ ns: string; h: Rtnl }> {
  const ns = await freshNetns(t, tag);
  const h = await Rtnl.open({ netns: ns });
  t.after(() => h.close());
  return { ns, h };
}

interface IpAddr {
  ifname: string;
  addr_info: Array<{ family: string; local: string; prefixlen: number; broadcast?: string; scope: string; label?: string; nodad?: boolean; noprefixroute?: boolean; address?: string }>;
}

test('addresses: add IPv4 (broadcast, label) and IPv6 (nodad, noprefixroute); list; delete', async (t) => {
  const { ns, h } = await open(t, 'addr');
  await h.links.add({ kind: 'bridge', name: 'br0', up: true });
  await h.addresses.add('br0', '192.168.0.1/24', { broadcast: true });
  await h.addresses.add('br0', '203.0.113.7/32', { label: 'br0:pub' });
  await h.addresses.add('br0', '2001:db8::1/64', { nodad: true });
  await h.addresses.add('br0', '2001:db8:1::1/64', { nodad: true, noprefixroute: true });
  const [ipBr] = await ipJson<IpAddr[]>(ns, ['addr', 'show', 'dev', 'br0']);
  const v4 = ipBr!.addr_info.find((a) => a.local === '192.168.0.1')!;
  assert.deepEqual([v4.family, v4.prefixlen, v4.broadcast, v4.scope], ['inet', 24, '192.168.0.255', 'global']);
  assert.equal(ipBr!.addr_info.find((a) => a.local === '203.0.113.7')?.label, 'br0:pub');
  const v6 = ipBr!.addr_info.find((a) => a.local === '2001:db8::1')!;
  assert.equal(v6.nodad, true);
  assert.equal(ipBr!.addr_info.find((a) => a.local === '2001:db8:1::1')?.noprefixroute, true);
  const ours = await h.addresses.list({ link: 'br0' });
  const theirs = ipBr!.addr_info.map((a) => `${a.local}/${a.prefixlen}`).sort();
  assert.deepEqual(ours.map((a) => a.cidr).sort(), theirs);
  const a4 = ours.find((a) => a.address === '192.168.0.1')!;
  assert.deepEqual([a4.family, a4.link, a4.broadcast, a4.scope, a4.flags.permanent], [4, 'br0', '192.168.0.255', 'global', true]);
  assert.equal(ours.find((a) => a.address === '2001:db8::1')!.flags.nodad, true);
  assert.deepEqual((await h.addresses.list({ family: 6, link: 'br0' })).every((a) => a.family === 6), true);
  await assert.rejects(h.addresses.add('br0', '192.168.0.1/24'), (e: unknown) => e instanceof NetlinkError && e.code === 'EEXIST');
  await h.addresses.delete('br0', '192.168.0.1/24');
  await assert.rejects(h.addresses.delete('br0', '192.168.0.1/24'), (e: unknown) => e instanceof NetlinkError && e.code === 'EADDRNOTAVAIL');
  const after = await ipJson<IpAddr[]>(ns, ['-4', 'addr', 'show', 'dev', 'br0']);
  assert.deepEqual(after[0]!.addr_info.map((a) => a.local), ['203.0.113.7']);
  for (const [cidr, field] of [['192.168.0.1', 'cidr'], ['192.168.0.1/33', 'cidr'], ['2001:db8::/129', 'cidr'], ['x/24', 'cidr']] as const) {
    await assert.rejects(h.addresses.add('br0', cidr), (e: unknown) => e instanceof ValidationError && e.field === field);
  }
  await assert.rejects(h.addresses.add('br0', '2001:db8::5/64', { broadcast: true }), (e: unknown) => e instanceof ValidationError && e.field === 'options.broadcast');
});

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  metric?: number;
  protocol?: string;
  scope?: string;
  type?: string;
  prefsrc?: string;
  table?: string;
  metrics?: Array<{ mtu?: number }>;
}

test('routes: add, replace, list and delete in main and other tables, IPv4 and IPv6', async (t) => {
  const { ns, h } = await open(t, 'route');
  await h.links.add({ kind: 'bridge', name: 'br0', up: true });
  await h.addresses.add('br0', '192.168.0.1/24');
  await h.addresses.add('br0', '2001:db8::1/64', { nodad: true });
  await h.routes.add({ to: '198.51.100.0/24', via: '192.168.0.254', metric: 50 });
  await h.routes.add({ to: 'default', via: '192.168.0.254', table: 1000 });
  await h.routes.add({ to: '2001:db8:1::/48', via: '2001:db8::fe', dev: 'br0', mtu: 1400 });
  await h.routes.add({ to: '203.0.113.128/25', type: 'blackhole' });
  await h.routes.add({ to: '203.0.113.0/26', dev: 'br0', src: '192.168.0.1' });
  const ip4 = await ipJson<IpRoute[]>(ns, ['-4', 'route', 'show']);
  const r1 = ip4.find((r) => r.dst === '198.51.100.0/24')!;
  assert.deepEqual([r1.gateway, r1.metric, r1.dev], ['192.168.0.254', 50, 'br0']);
  assert.equal(ip4.find((r) => r.dst === '203.0.113.128/25')?.type, 'blackhole');
  const link = ip4.find((r) => r.dst === '203.0.113.0/26')!;
  assert.deepEqual([link.scope, link.prefsrc], ['link', '192.168.0.1']);
  const t1000 = await ipJson<IpRoute[]>(ns, ['-4', 'route', 'show', 'table', '1000']);
  assert.deepEqual(t1000.map((r) => [r.dst, r.gateway]), [['default', '192.168.0.254']]);
  const ip6 = await ipJson<IpRoute[]>(ns, ['-6', 'route', 'show']);
  assert.equal(ip6.find((r) => r.dst === '2001:db8:1::/48')?.metrics?.[0]?.mtu, 1400);

  const ours4 = await h.routes.list({ family: 4 });
  assert.deepEqual(ours4.map((r) => r.to === 'default' ? 'default' : r.to.replace(/\/32$/, '')).sort(), ip4.map((r) => r.dst).sort());
  const mine = ours4.find((r) => r.to === '198.51.100.0/24')!;
  assert.deepEqual([mine.via, mine.metric, mine.dev, mine.protocol, mine.scope, mine.type, mine.table], ['192.168.0.254', 50, 'br0', 'boot', 'global', 'unicast', 254]);
  const def = await h.routes.list({ table: 1000 });
  assert.deepEqual(def.map((r) => [r.to, r.via, r.family]), [['default', '192.168.0.254', 4]]);
  const r6 = (await h.routes.list({ family: 6 })).find((r) => r.to === '2001:db8:1::/48')!;
  assert.deepEqual([r6.via, r6.mtu, r6.dev], ['2001:db8::fe', 1400, 'br0']);
  assert.ok((await h.routes.list({ table: 'all' })).some((r) => r.table === 255), 'local table included with all');

  await assert.rejects(h.routes.add({ to: '198.51.100.0/24', via: '192.168.0.254', metric: 50 }), (e: unknown) => e instanceof NetlinkError && e.code === 'EEXIST');
  await h.routes.replace({ to: '198.51.100.0/24', via: '192.168.0.253', metric: 50 });
  assert.equal((await ipJson<IpRoute[]>(ns, ['-4', 'route', 'show', '198.51.100.0/24']))[0]?.gateway, '192.168.0.253');
  await h.routes.delete({ to: '198.51.100.0/24', metric: 50 });
  await h.routes.delete({ to: 'default', table: 1000 });
  await assert.rejects(h.routes.delete({ to: 'default', table: 1000 }), (e: unknown) => e instanceof NetlinkError && e.code === 'ESRCH');
  assert.equal((await ipJson<IpRoute[]>(ns, ['-4', 'route', 'show', '198.51.100.0/24'])).length, 0);
  await assert.rejects(h.routes.add({ to: '10.0.0.0/33' }), (e: unknown) => e instanceof ValidationError && e.field === 'to');
  await assert.rejects(h.routes.add({ to: '10.0.0.1/8' }), (e: unknown) => e instanceof ValidationError && e.field === 'to');
  await assert.rejects(h.routes.add({ to: '10.0.0.0/8', via: '2001:db8::1' }), (e: unknown) => e instanceof ValidationError && e.field === 'via');
  await assert.rejects(h.routes.add({ to: '10.0.0.0/8', via: '198.51.100.77' }), (e: unknown) => e instanceof NetlinkError && e.code === 'ENETUNREACH');
});

interface IpNeigh {
  dst: string;
  dev: string;
  lladdr?: string;
  state?: string[];
  proxy?: null | boolean;
}

test('neighbours: permanent entries and proxy entries (compare ip neigh show proxy)', async (t) => {
  const { ns, h } = await open(t, 'neigh');
  await h.links.add({ kind: 'veth', name: 'eth0', up: true, peer: { name: 'eth1' } });
  await h.neighbors.add({ to: '192.168.0.7', dev: 'eth0', lladdr: '52:54:00:00:00:07' });
  await h.neighbors.add({ to: '2001:db8::7', dev: 'eth0', lladdr: '52:54:00:00:00:08', state: 'noarp' });
  await h.neighbors.add({ to: '2001:db8::10', dev: 'eth0', proxy: true });
  await h.neighbors.add({ to: '2001:db8::11', dev: 'eth0', proxy: true });
  const ipN = await ipJson<IpNeigh[]>(ns, ['neigh', 'show', 'nud', 'all']); // ip hides NOARP entries by default
  const n4 = ipN.find((n) => n.dst === '192.168.0.7')!;
  assert.deepEqual([n4.lladdr, n4.state, n4.dev], ['52:54:00:00:00:07', ['PERMANENT'], 'eth0']);
  assert.deepEqual(ipN.find((n) => n.dst === '2001:db8::7')?.state, ['NOARP']);
  const ipProxy = await ipJson<IpNeigh[]>(ns, ['-6', 'neigh', 'show', 'proxy']);
  const ours = await h.neighbors.list({ proxy: true });
  assert.deepEqual(ours.map((n) => `${n.to} ${n.dev}`).sort(), ipProxy.map((n) => `${n.dst} ${n.dev}`).sort());
  assert.equal(ours.length, 2);
  assert.ok(ours.every((n) => n.proxy && n.family === 6));
  const plain = await h.neighbors.list();
  const ipAll = await ipJson<IpNeigh[]>(ns, ['neigh', 'show', 'nud', 'all']);
  // The kernel adds multicast NOARP entries (ff02::16, ...) on its own, at its own pace: compare the rest.
  const unicast = (a: string) => !/^(ff|22[4-9]\.|23\d\.)/.test(a);
  assert.deepEqual(
    plain.filter((n) => unicast(n.to)).map((n) => `${n.to} ${n.lladdr}`).sort(),
    ipAll.filter((n) => unicast(n.dst)).map((n) => `${n.dst} ${n.lladdr}`).sort(),
  );
  assert.ok(plain.some((n) => n.to === '2001:db8::7'));
  assert.deepEqual(plain.find((n) => n.to === '192.168.0.7')?.state, ['permanent']);
  assert.ok((await h.neighbors.list({ family: 6 })).every((n) => n.family === 6 && n.to.includes(':')));
  await h.neighbors.replace({ to: '192.168.0.7', dev: 'eth0', lladdr: '52:54:00:00:00:99' });
  assert.equal((await ipJson<IpNeigh[]>(ns, ['neigh', 'show', '192.168.0.7']))[0]?.lladdr, '52:54:00:00:00:99');
  // The kernel treats adding an existing proxy entry as an update (no EEXIST, unlike ordinary entries).
  await h.neighbors.add({ to: '2001:db8::10', dev: 'eth0', proxy: true });
  assert.equal((await h.neighbors.list({ proxy: true })).length, 2);
  await assert.rejects(h.neighbors.add({ to: '192.168.0.7', dev: 'eth0', lladdr: '52:54:00:00:00:07' }), (e: unknown) => e instanceof NetlinkError && e.code === 'EEXIST');
  await h.neighbors.delete({ to: '2001:db8::10', dev: 'eth0', proxy: true });
  await h.neighbors.delete({ to: '192.168.0.7', dev: 'eth0' });
  assert.deepEqual((await ipJson<IpNeigh[]>(ns, ['-6', 'neigh', 'show', 'proxy'])).map((n) => n.dst), ['2001:db8::11']);
  await assert.rejects(h.neighbors.delete({ to: '2001:db8::10', dev: 'eth0', proxy: true }), NetlinkError);
  await assert.rejects(h.neighbors.add({ to: '2001:db8::12', dev: 'eth0', proxy: true, lladdr: '52:54:00:00:00:01' }), (e: unknown) => e instanceof ValidationError && e.field === 'lladdr');
  await assert.rejects(h.neighbors.add({ to: 'nope', dev: 'eth0' }), (e: unknown) => e instanceof ValidationError && e.field === 'to');
});

test('protocol marks: an address (IFA_PROTO, read back by a raw RTM_GETADDR dump) and a proxy neighbour (ip -d neigh) keep the protocol they were added with', async (t) => {
  const { ns, h } = await open(t, 'proto');
  await h.links.add({ kind: 'veth', name: 'eth0', up: true, peer: { name: 'eth1' } });
  await h.addresses.add('eth0', '2001:db8::5/128', { nodad: true, protocol: 118 });
  await h.addresses.add('eth0', '2001:db8::6/128', { nodad: true });
  await h.neighbors.add({ to: '2001:db8::7', dev: 'eth0', proxy: true, protocol: 118 });
  await h.neighbors.add({ to: '2001:db8::8', dev: 'eth0', proxy: true });
  // the oracle: the kernel's own dump, decoded here by hand (iproute2 6.1 does not print IFA_PROTO)
  const sock = NetlinkSocket.open({ netns: ns });
  t.after(() => sock.close());
  const req = Buffer.alloc(8);
  req.writeUInt8(10, 0); // AF_INET6
  const raw = new Map<string, number | null>();
  for (const m of await sock.request(22 /* RTM_GETADDR */, netlink.NLM_F_DUMP, req)) {
    let addr: string | undefined;
    let proto: number | null = null;
    for (let off = 8; off + 4 <= m.payload.length; ) {
      const len = m.payload.readUInt16LE(off);
      const type = m.payload.readUInt16LE(off + 2) & 0x3fff;
      if (len < 4) break;
      if (type === 1 /* IFA_ADDRESS */) addr = m.payload.subarray(off + 4, off + 20).toString('hex');
      if (type === 11 /* IFA_PROTO */) proto = m.payload.readUInt8(off + 4);
      off += (len + 3) & ~3;
    }
    if (addr !== undefined) raw.set(addr, proto);
  }
  assert.equal(raw.get('20010db8000000000000000000000005'), 118);
  assert.equal(raw.get('20010db8000000000000000000000006'), null);
  const listed = await h.addresses.list({ link: 'eth0' });
  assert.equal(listed.find((a) => a.address === '2001:db8::5')?.protocol, 118);
  assert.equal(listed.find((a) => a.address === '2001:db8::6')?.protocol, null);
  const ipProxy = await ipJson<Array<{ dst: string; protocol?: string }>>(ns, ['-d', '-6', 'neigh', 'show', 'proxy']);
  assert.equal(ipProxy.find((n) => n.dst === '2001:db8::7')?.protocol, '118');
  assert.equal(ipProxy.find((n) => n.dst === '2001:db8::8')?.protocol, undefined);
  const ours = await h.neighbors.list({ proxy: true });
  assert.deepEqual(ours.map((n) => [n.to, n.protocol]).sort(), [['2001:db8::7', 118], ['2001:db8::8', null]]);
  await assert.rejects(h.addresses.add('eth0', '2001:db8::9/128', { protocol: 256 }), (e: unknown) => e instanceof ValidationError && e.field === 'options.protocol');
  await assert.rejects(h.neighbors.add({ to: '2001:db8::9', dev: 'eth0', proxy: true, protocol: -1 }), (e: unknown) => e instanceof ValidationError && e.field === 'protocol');
});

test('sysctls act inside the handle namespace only; the root namespace value is unchanged (read only)', async (t) => {
  const { ns, h } = await open(t, 'sysctl');
  const rootForward = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
  assert.equal(await h.sysctl.get('net.ipv4.ip_forward'), '0');
  await h.sysctl.set('net.ipv4.ip_forward', 1);
  assert.equal((await sh(ns, 'cat', ['/proc/sys/net/ipv4/ip_forward'])).trim(), '1');
  assert.equal(await h.sysctl.getInt('net.ipv4.ip_forward'), 1);
  assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(), rootForward, 'root namespace untouched');
  // an interface key, and a name with a dot written with '/' as sysctl(8) does
  await h.links.add({ kind: 'veth', name: 'eth0', peer: { name: 'eth0.5' } });
  await h.sysctl.set('net.ipv6.conf.eth0.proxy_ndp', true);
  assert.equal(netns.readFileIn(ns, '/proc/sys/net/ipv6/conf/eth0/proxy_ndp').trim(), '1');
  await h.sysctl.set('net.ipv4.conf.eth0/5.forwarding', '1');
  assert.equal(netns.readFileIn(ns, '/proc/sys/net/ipv4/conf/eth0.5/forwarding').trim(), '1');
  for (const key of ['kernel.hostname', 'net..ipv4', 'net.ipv4.conf.//.forwarding', 'net.ipv4.conf.../x', 'net', 'net.ipv4 .x']) {
    await assert.rejects(h.sysctl.get(key), (e: unknown) => e instanceof ValidationError && e.field === 'key', key);
  }
  await assert.rejects(h.sysctl.set('net.ipv4.ip_forward', '1\n0'), (e: unknown) => e instanceof ValidationError && e.field === 'value');
  await assert.rejects(h.sysctl.get('net.ipv4.no_such_key'), (e: unknown) => e instanceof SystemError && e.code === 'ENOENT');
  await assert.rejects(h.sysctl.set('net.ipv4.ip_forward', 'abc'), (e: unknown) => e instanceof SystemError && e.code === 'EINVAL');
  // exchange: writes and returns the old value; Sysctl.in works without a netlink handle
  const bare = Sysctl.in(ns);
  assert.equal(await bare.exchange('net.ipv4.conf.eth0/5.forwarding', 0), '1');
  assert.equal(netns.readFileIn(ns, '/proc/sys/net/ipv4/conf/eth0.5/forwarding').trim(), '0');
  assert.equal(await bare.exchange('net.ipv6.conf.eth0.proxy_ndp', false), '1');
  assert.equal(await h.sysctl.get('net.ipv6.conf.eth0.proxy_ndp'), '0');
  assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(), rootForward, 'root namespace untouched');
});
