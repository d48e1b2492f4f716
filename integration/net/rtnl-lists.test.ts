// The list operations on a namespace with hundreds of objects (the dumps span many datagrams),
// compared in full with `ip -j`: every link (name, index, kind, MAC, MTU, flags, master, peer),
// every address with its link's name, the main table's routes with their device names, the
// neighbour and proxy entries with theirs. The names come from SIOCGIFNAME in the handle's
// namespace and link notifications, not from a link dump: links renamed, deleted, their index
// used again, more changes than the notification queue holds, all show in the next list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetlinkClosedError, Rtnl } from '@vmhost/net';
import { freshNetns, ipJson, sh } from '../helpers/ns.js';

const PAIRS = 150;

/**
 * Asserts that `ours()` equals `theirs()`, read between two readings of `theirs` that agree: the
 * kernel finishes some work asynchronously (carrier events add IPv6 routes), so a snapshot is
 * taken only while nothing changes (up to 20 tries, 100 ms apart).
 */
async function sameAs(what: string, ours: () => Promise<string[]>, theirs: () => Promise<string[]>): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const before = (await theirs()).sort();
    const mine = (await ours()).sort();
    const after = (await theirs()).sort();
    if (JSON.stringify(before) === JSON.stringify(after)) {
      assert.deepEqual(mine, before, what);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${what}: ip -j never gave the same answer twice in a row`);
}

interface IpLink { ifindex: number; ifname: string; address?: string; mtu: number; flags: string[]; master?: string; link?: string; linkinfo?: { info_kind?: string } }
interface IpAddr { ifname: string; addr_info: Array<{ local: string; prefixlen: number }> }
interface IpRoute { dst: string; gateway?: string; dev?: string }
interface IpNeigh { dst: string; dev: string; lladdr?: string }

test('lists of ~300 links, addresses, routes and neighbours equal ip -j', async (t) => {
  const ns = await freshNetns(t, 'lists');
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  // no IPv6 link-local addresses (they would come later, when a link gets its carrier)
  const lines = ['link set lo up', 'link add br0 type bridge', 'link set br0 addrgenmode none', 'link set br0 up'];
  for (let i = 0; i < PAIRS; i++) {
    lines.push(`link add d${i} type veth peer name e${i}`);
    lines.push(`address add 10.1.${i}.1/24 dev d${i}`, `address add 2001:db8:${hex(i)}::1/64 dev e${i} nodad`);
    if (i % 3 === 0) lines.push(`link set e${i} master br0`);
  }
  lines.push('link set d0 addrgenmode none', 'link set e0 addrgenmode none', 'link set d0 up', 'link set e0 up');
  for (let i = 0; i < 200; i++) {
    lines.push(`route add 172.16.${i}.0/24 via 10.1.0.2 dev d0`, `route add 2001:db8:ff:${hex(i)}::/64 via fe80::2 dev d0`);
    lines.push(`neigh add 10.1.0.${i + 10} lladdr 52:54:00:00:00:${hex(i)} dev d0 nud permanent`);
    lines.push(`neigh add 2001:db8::${hex(i + 16)} lladdr 52:54:00:00:01:${hex(i)} dev d0 nud permanent`);
  }
  lines.push('neigh add proxy 2001:db8::99 dev d0');
  await sh(ns, 'ip', ['-batch', '-'], lines.join('\n') + '\n');
  const h = await Rtnl.open({ netns: ns });
  t.after(() => h.close());

  const ipLinks = await ipJson<IpLink[]>(ns, ['-d', 'link', 'show']);
  const links = await h.links.list();
  assert.equal(links.length, 2 * PAIRS + 2);
  const byIndex = new Map(links.map((l) => [l.index, l.name]));
  const linkText = (l: { index: number; name: string; kind: string | null; mac: string | null; mtu: number; up: boolean; master: string | null; peer: string | null }) =>
    `${l.index} ${l.name} ${l.kind} ${l.mac} ${l.mtu} ${l.up} ${l.master} ${l.peer}`;
  assert.deepEqual(
    links.map((l) => linkText({ index: l.index, name: l.name, kind: l.kind, mac: l.mac, mtu: l.mtu, up: l.flags.up, master: l.master, peer: l.veth?.peerIndex ? (byIndex.get(l.veth.peerIndex) ?? null) : null })),
    ipLinks
      .sort((a, b) => a.ifindex - b.ifindex)
      .map((l) => linkText({ index: l.ifindex, name: l.ifname, kind: l.linkinfo?.info_kind ?? null, mac: l.address ?? null, mtu: l.mtu, up: l.flags.includes('UP'), master: l.master ?? null, peer: l.link ?? null })),
  );

  const addrs = await h.addresses.list();
  assert.equal(addrs.length, 2 * PAIRS + 2); // + 127.0.0.1 and ::1
  await sameAs(
    'addresses',
    async () => (await h.addresses.list()).map((a) => `${a.cidr} ${a.link}`),
    async () => (await ipJson<IpAddr[]>(ns, ['address', 'show'])).flatMap((l) => l.addr_info.map((a) => `${a.local}/${a.prefixlen} ${l.ifname}`)),
  );

  assert.ok((await h.routes.list()).length >= 400);
  await sameAs(
    'routes',
    async () => (await h.routes.list()).map((r) => `${r.to} ${r.via} ${r.dev}`),
    async () =>
      [...(await ipJson<IpRoute[]>(ns, ['-4', 'route', 'show', 'table', 'main'])), ...(await ipJson<IpRoute[]>(ns, ['-6', 'route', 'show', 'table', 'main']))].map(
        (r) => `${r.dst} ${r.gateway ?? null} ${r.dev ?? null}`,
      ),
  );

  // ip neigh show hides NOARP entries (lo's, IPv6 multicast): compare the permanent ones
  assert.equal((await h.neighbors.list()).filter((n) => n.state.includes('permanent')).length, 400);
  await sameAs(
    'neighbours',
    async () => (await h.neighbors.list()).filter((n) => n.state.includes('permanent')).map((n) => `${n.to} ${n.dev} ${n.lladdr}`),
    async () => (await ipJson<IpNeigh[]>(ns, ['neigh', 'show', 'nud', 'permanent'])).map((n) => `${n.dst} ${n.dev} ${n.lladdr}`),
  );
  assert.deepEqual((await h.neighbors.list({ proxy: true })).map((n) => `${n.to} ${n.dev}`), ['2001:db8::99 d0']);

  // The handle keeps names between calls, kept current by link notifications: changes made by
  // another process between two lists show in the second one.
  await sh(ns, 'ip', ['-batch', '-'], 'link set d1 name renamed1\nlink del d2\n');
  const after = await h.addresses.list({ family: 4 });
  assert.equal(after.find((a) => a.cidr === '10.1.1.1/24')?.link, 'renamed1');
  assert.equal(after.find((a) => a.cidr === '10.1.2.1/24'), undefined);
  // an index used again by a new link with another name
  const d3 = links.find((l) => l.name === 'd3')!.index;
  await sh(ns, 'ip', ['-batch', '-'], `link del d3\nlink add reused index ${d3} type veth peer name reusedpeer\naddress add 10.1.3.1/24 dev reused\n`);
  assert.equal((await h.addresses.list({ family: 4 })).find((a) => a.cidr === '10.1.3.1/24')?.link, 'reused');
  assert.equal((await h.links.get('reused')).index, d3);
  // more changes than the notification queue holds (lost notifications): every name still right
  await sh(ns, 'ip', ['-batch', '-'], Array.from({ length: PAIRS - 10 }, (_, i) => `link set d${i + 10} name n${i + 10}\n`).join(''));
  await sameAs(
    'addresses after many renames',
    async () => (await h.addresses.list()).map((a) => `${a.cidr} ${a.link}`),
    async () => (await ipJson<IpAddr[]>(ns, ['address', 'show'])).flatMap((l) => l.addr_info.map((a) => `${a.local}/${a.prefixlen} ${l.ifname}`)),
  );
  // a handle closed while a list runs: it fails as closed, it does not read another namespace
  const h2 = await Rtnl.open({ netns: ns });
  const listing = h2.addresses.list();
  h2.close();
  await assert.rejects(listing, (e: unknown) => e instanceof NetlinkClosedError);
});

test('links.stats: the IFLA_STATS64 counters of every link (or of the names given) equal ip -s -j, after traffic', async (t) => {
  const ns = await freshNetns(t, 'stats');
  // no IPv6 on the veths: a link that comes up sends on its own for seconds (DAD, MLD reports,
  // router solicitations), which ip's reading and ours below would not both see (the CI caught
  // an 86-byte packet from b0 between them)
  await sh(ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1']);
  await sh(ns, 'ip', ['-batch', '-'], ['link set lo up', 'link add a0 type veth peer name b0', 'address add 10.9.0.1/24 dev a0', 'address add 10.9.0.2/24 dev b0', 'link set a0 up', 'link set b0 up'].join('\n') + '\n');
    // traffic through lo (10.9.0.2 is a local address: the kernel delivers it through lo)
  const udp = "const s=require('dgram').createSocket('udp4');let n=0;const go=()=>s.send('x',9,'10.9.0.2',()=>{if(++n<6)go();else s.close()});go()";
  await sh(ns, process.execPath, ['-e', udp]);
  const h = await Rtnl.open({ netns: ns });
  t.after(() => h.close());
  interface IpStats { ifindex: number; ifname: string; stats64: { rx: { bytes: number; packets: number; errors: number; dropped: number; multicast: number }; tx: { bytes: number; packets: number; errors: number; dropped: number } } }
  // nothing sends on a namespace left alone (IPv4 only, no traffic but ours): ip's reading agrees with ours
  const ip = await ipJson<IpStats[]>(ns, ['-s', 'link', 'show']);
  const ours = await h.links.stats();
  assert.deepEqual(
    ours.map((s) => ({ index: s.index, name: s.name, rxBytes: s.rxBytes, rxPackets: s.rxPackets, txBytes: s.txBytes, txPackets: s.txPackets, rxErrors: s.rxErrors, txErrors: s.txErrors, rxDropped: s.rxDropped, txDropped: s.txDropped, multicast: s.multicast })),
    ip.map((l) => ({ index: l.ifindex, name: l.ifname, rxBytes: l.stats64.rx.bytes, rxPackets: l.stats64.rx.packets, txBytes: l.stats64.tx.bytes, txPackets: l.stats64.tx.packets, rxErrors: l.stats64.rx.errors, txErrors: l.stats64.tx.errors, rxDropped: l.stats64.rx.dropped, txDropped: l.stats64.tx.dropped, multicast: l.stats64.rx.multicast })),
  );
  const lo = ours.find((s) => s.name === 'lo')!;
  assert.ok(lo.rxPackets >= 6 && lo.txPackets >= 6, `lo carried the datagrams: ${JSON.stringify(lo)}`);
  assert.deepEqual((await h.links.stats(['b0', 'lo'])).map((s) => s.name), ['lo', 'b0']);
  assert.deepEqual(await h.links.stats(['nothere']), []);
  await assert.rejects(h.links.stats(['bad name']), /names\[0\]/);
});
